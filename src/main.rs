fn main() {
    println!("lra: under construction");
}
