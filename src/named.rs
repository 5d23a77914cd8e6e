//! Enumerations whose values are words of the language. [`named_enum!`] writes each word once:
//! the schema offers `NAMES`, the lowering parses with `from_name` (an exhaustive mapping, so a
//! word the schema accepts can never fall through to a default), and serde, `lra explain` and
//! messages print `name()`.

/// A value of the language spelled as one word (`mean`, `adamw`).
pub(crate) trait Named: Sized + Copy {
    /// The value `word` names, if any.
    fn from_word(word: &str) -> Option<Self>;
}

/// `named_enum! { pub enum Pool { Mean = "mean", Max = "max" } }` defines the enum with
/// `ALL`, `NAMES`, `const fn name`, `from_name` and a lowercase serde form equal to the name.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant ),+
        }

        impl $name {
            /// Every value, in the order the schema lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The words a spec may write, in the order of [`Self::ALL`]. Generated for every
            /// enum; the engine-only ones never list their words.
            #[allow(dead_code)]
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// The word a spec writes for this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The value a word names; `None` for a word that is not one of [`Self::NAMES`].
            pub(crate) fn from_name(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::named::Named for $name {
            fn from_word(word: &str) -> Option<Self> {
                $name::from_name(word)
            }
        }

        /// The command line takes the same words as a spec.
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enumeration.
        pub(crate) enum Colour { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        assert_eq!(Colour::NAMES, &["red", "dark_blue"]);
        for (c, word) in Colour::ALL.iter().zip(Colour::NAMES) {
            assert_eq!(c.name(), *word);
            assert_eq!(Colour::from_name(word), Some(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{word}\""));
            assert_eq!(c.to_string(), *word);
        }
        assert_eq!(Colour::from_name("green"), None);
    }
}
