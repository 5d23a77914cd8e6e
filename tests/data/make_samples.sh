#!/usr/bin/env bash
# Cuts the small real-data samples under tests/data/ from the full converted data sets.
#
# Needs the full data (about 84 MB, not in this repository): by default the `shared/data`
# folder beside the repository, or the folder given as the first argument, laid out as
# tests/data/README.md describes. The tests never run this script; they read what it wrote,
# which is committed. Rerunning it on the same full data gives the same bytes (gzip -n, the
# tar members' own times), so a diff after a rerun means the full data changed.
#
# Usage: tests/data/make_samples.sh [FULL_DATA_DIR]
# Tools: bash, coreutils, gzip, awk, python3 (its tarfile and lzma modules, for the tar.xz).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
full="${1:-$here/../../../shared/data}"
if [ ! -d "$full/listops" ]; then
    echo "make_samples.sh: no full data at $full (expected listops/, imdb/, retrieval/," >&2
    echo "cifar10/ and pathfinder32/ there); pass the folder as the first argument" >&2
    exit 1
fi
full="$(cd "$full" && pwd)"

# The first `n` lines of a gzip file, gzip-compressed again. awk reads to the end, so no
# stage of the pipe dies of SIGPIPE (which pipefail would report).
head_gz() {
    local src="$1" dst="$2" n="$3"
    zcat "$src" | awk -v n="$n" 'NR <= n' | gzip -n -9 >"$dst"
}

# ListOps: the header and the first rows of each split, CRLF line ends kept.
mkdir -p "$here/listops"
for split_rows in train:200 val:50 test:50; do
    split="${split_rows%%:*}" rows="${split_rows##*:}"
    head_gz "$full/listops/basic_$split.tsv.gz" "$here/listops/basic_$split.tsv.gz" $((rows + 1))
done

# IMDB: the first reviews of each split (the rows are already shuffled, both labels mixed).
mkdir -p "$here/imdb"
head_gz "$full/imdb/train.tsv.gz" "$here/imdb/train.tsv.gz" 200
head_gz "$full/imdb/test.tsv.gz" "$here/imdb/test.tsv.gz" 100

# Retrieval: the first `k` linked and the first `k` unlinked pairs of each split, in file
# order, so each sample stays balanced and page-disjoint from the other splits.
mkdir -p "$here/retrieval"
for split_k in train:40 eval:15 test:15; do
    split="${split_k%%:*}" k="${split_k##*:}"
    zcat "$full/retrieval/manpages_pairs.$split.tsv.gz" |
        awk -F '\t' -v k="$k" '($1 == "1" && ones++ < k) || ($1 == "0" && zeros++ < k)' |
        gzip -n -9 >"$here/retrieval/manpages_pairs.$split.tsv.gz"
done

# CIFAR-10: the first 10 training and 5 test images of each class, in the release's layout
# (directory entries, the pax global header naming the snapshot's commit, members in order).
mkdir -p "$here/cifar10"
python3 - "$full/cifar10/cifar10-jpeg.tar.xz" "$here/cifar10/cifar10-jpeg.tar.xz" <<'EOF'
import re, sys, tarfile
src, dst = sys.argv[1:]
keep = {"train": 10, "test": 5}
with tarfile.open(src, "r:xz") as tin:
    with tarfile.open(dst, "w:xz", format=tarfile.PAX_FORMAT,
                      pax_headers=tin.pax_headers, preset=9) as tout:
        for member in tin:
            m = re.fullmatch(r"(train|test)/[a-z]+/(\d{4})\.jpg", member.name)
            if member.isdir():
                tout.addfile(member)
            elif m and int(m.group(2)) < keep[m.group(1)]:
                tout.addfile(member, tin.extractfile(member))
EOF

# Pathfinder-32 (hard): the first 100 images of batches 0 and 1 with their metadata lines.
pf_src="$full/pathfinder32/curv_contour_length_14"
pf_dst="$here/pathfinder32/curv_contour_length_14"
rm -rf "$pf_dst"
mkdir -p "$pf_dst/metadata"
for b in 0 1; do
    mkdir -p "$pf_dst/imgs/$b"
    awk 'NR <= 100' "$pf_src/metadata/$b.npy" >"$pf_dst/metadata/$b.npy"
    while read -r folder file _; do
        cp "$pf_src/$folder/$file" "$pf_dst/$folder/$file"
    done <"$pf_dst/metadata/$b.npy"
done

du -sh "$here"
