//! Checks one field's value against its schema type, and normalises it (an integer written
//! for a float field becomes a float).

use super::error::{suggest, CheckError};
use super::schema::{FieldDef, Ty};
use crate::syntax::ast::{Value, ValueKind};

pub(crate) fn check_value(field: &FieldDef, value: &Value) -> Result<ValueKind, Box<CheckError>> {
    check(field, value).map_err(Box::new)
}

// The error is boxed once, by `check_value`; here it is built and returned straight away.
#[allow(clippy::result_large_err)]
fn check(field: &FieldDef, value: &Value) -> Result<ValueKind, CheckError> {
    let wrong_type = || CheckError::WrongType {
        span: value.span,
        field: field.name.to_string(),
        expected: field.ty.describe(),
        found: match &value.kind {
            ValueKind::Tuple(items) | ValueKind::List(items) => {
                format!("{} of {} items", value.kind.describe(), items.len())
            }
            other => other.describe().to_string(),
        },
    };
    let out_of_range = || CheckError::OutOfRange {
        span: value.span,
        field: field.name.to_string(),
        expected: field.ty.describe(),
    };
    match (&field.ty, &value.kind) {
        (Ty::Int { min, max }, ValueKind::Int(i)) => {
            if i < min || i > max {
                Err(out_of_range())
            } else {
                Ok(ValueKind::Int(*i))
            }
        }
        (Ty::IntOneOf(options), ValueKind::Int(i)) => {
            if options.contains(i) {
                Ok(ValueKind::Int(*i))
            } else {
                Err(out_of_range())
            }
        }
        (
            Ty::Float {
                min,
                max,
                min_open,
                max_open,
            },
            ValueKind::Int(_) | ValueKind::Float(_),
        ) => {
            let x = number(&value.kind).unwrap_or(f64::NAN);
            let below = if *min_open { x <= *min } else { x < *min };
            let above = if *max_open { x >= *max } else { x > *max };
            if below || above || x.is_nan() {
                Err(out_of_range())
            } else {
                Ok(ValueKind::Float(x))
            }
        }
        (Ty::Bool, ValueKind::Bool(b)) => Ok(ValueKind::Bool(*b)),
        (Ty::Str, ValueKind::Str(s)) => Ok(ValueKind::Str(s.clone())),
        (Ty::Enum(options), ValueKind::Ident(name)) => {
            if options.contains(&name.as_str()) {
                Ok(ValueKind::Ident(name.clone()))
            } else {
                Err(CheckError::UnknownValue {
                    span: value.span,
                    field: field.name.to_string(),
                    value: name.clone(),
                    options: field.ty.describe(),
                    suggestion: suggest(name, options.iter().copied()),
                })
            }
        }
        (Ty::FloatPair, ValueKind::Tuple(items)) => {
            let numbers: Vec<Option<f64>> = items.iter().map(|v| number(&v.kind)).collect();
            if numbers.len() != 2 || numbers.contains(&None) {
                return Err(wrong_type());
            }
            let items = items
                .iter()
                .zip(numbers)
                .map(|(v, x)| Value {
                    kind: ValueKind::Float(x.unwrap_or(f64::NAN)),
                    span: v.span,
                })
                .collect();
            Ok(ValueKind::Tuple(items))
        }
        (Ty::StepsOrPercent, ValueKind::Int(i)) if *i >= 0 => Ok(ValueKind::Int(*i)),
        (Ty::StepsOrPercent, ValueKind::Percent(p)) if (0.0..=100.0).contains(p) => {
            Ok(ValueKind::Percent(*p))
        }
        (Ty::StepsOrPercent, ValueKind::Int(_) | ValueKind::Percent(_)) => Err(out_of_range()),
        (Ty::Select, ValueKind::Best(metric)) => Ok(ValueKind::Best(metric.clone())),
        (Ty::Select, ValueKind::Ident(word)) if word == "last" => {
            Ok(ValueKind::Ident(word.clone()))
        }
        (Ty::Device, ValueKind::Ident(name)) => {
            let valid = name == "cpu"
                || name == "cuda"
                || name
                    .strip_prefix("cuda:")
                    .is_some_and(|i| i.parse::<usize>().is_ok());
            if valid {
                Ok(ValueKind::Ident(name.clone()))
            } else {
                Err(CheckError::UnknownValue {
                    span: value.span,
                    field: field.name.to_string(),
                    value: name.clone(),
                    options: field.ty.describe(),
                    suggestion: suggest(name, ["cpu", "cuda"]),
                })
            }
        }
        _ => Err(wrong_type()),
    }
}

/// An integer or a float as a float.
pub fn number(value: &ValueKind) -> Option<f64> {
    match value {
        ValueKind::Int(i) => Some(*i as f64),
        ValueKind::Float(x) => Some(*x),
        _ => None,
    }
}
