//! A micro-op's value as the passes see it: the history's own JSON (whole histories),
//! or integers laid out flat (compact histories, [`crate::history::TxnHistory`]). Both
//! answer every question the passes ask the same way for the same file.

use std::fmt;

use serde_json::Value;

use super::txn::Elem;

/// `null`, for [`MopValue::json`] on values that are not JSON.
static NULL: Value = Value::Null;

/// The value of a micro-op: an appended or written element, or a read's observation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MopValue<'h> {
    /// As the history holds it (any JSON).
    Json(&'h Value),
    /// Nothing known (a compact history's `null`).
    Null,
    /// An integer element (a compact history's append).
    Int(i64),
    /// A list of integers (a compact history's read).
    Ints(&'h [i64]),
}

impl<'h> MopValue<'h> {
    /// True for `null`.
    pub(crate) fn is_null(self) -> bool {
        matches!(self, MopValue::Json(Value::Null) | MopValue::Null)
    }

    /// The element it is, as [`Elem::of`] reads JSON (`null` is [`Elem::Nil`]).
    pub(crate) fn elem(self) -> Option<Elem<'h>> {
        match self {
            MopValue::Json(value) => Elem::of(value),
            MopValue::Null => Some(Elem::Nil),
            MopValue::Int(n) => Some(Elem::Int(n)),
            MopValue::Ints(_) => None,
        }
    }

    /// The list it is, if it is one.
    pub(crate) fn list(self) -> Option<List<'h>> {
        match self {
            MopValue::Json(Value::Array(items)) => Some(List::Json(items)),
            MopValue::Ints(items) => Some(List::Ints(items)),
            _ => None,
        }
    }

    /// The list it is, or the empty list.
    pub(crate) fn list_or_empty(self) -> List<'h> {
        self.list().unwrap_or(List::Ints(&[]))
    }

    /// The value as JSON.
    pub(crate) fn to_json(self) -> Value {
        match self {
            MopValue::Json(value) => value.clone(),
            MopValue::Null => Value::Null,
            MopValue::Int(n) => Value::from(n),
            MopValue::Ints(items) => List::Ints(items).to_json(),
        }
    }

    /// The history's JSON. Only whole histories (the only source of rw-register
    /// transactions) hold JSON; anything else answers `null`.
    pub(crate) fn json(self) -> &'h Value {
        match self {
            MopValue::Json(value) => value,
            _ => &NULL,
        }
    }
}

impl fmt::Display for MopValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MopValue::Json(value) => write!(f, "{value}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// A read's list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum List<'h> {
    /// JSON items, as the history holds them.
    Json(&'h [Value]),
    /// Integers.
    Ints(&'h [i64]),
}

impl<'h> List<'h> {
    /// Number of items.
    pub(crate) fn len(self) -> usize {
        match self {
            List::Json(items) => items.len(),
            List::Ints(items) => items.len(),
        }
    }

    /// True when there are no items.
    pub(crate) fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Item `i` as an element ([`Elem::of`]).
    pub(crate) fn elem(self, i: usize) -> Option<Elem<'h>> {
        match self {
            List::Json(items) => items.get(i).and_then(Elem::of),
            List::Ints(items) => items.get(i).map(|n| Elem::Int(*n)),
        }
    }

    /// Every item as an element ([`Elem::of`]).
    pub(crate) fn elems(self) -> impl Iterator<Item = Option<Elem<'h>>> {
        (0..self.len()).map(move |i| self.elem(i))
    }

    /// Item `i` as JSON (`null` past the end).
    pub(crate) fn json_at(self, i: usize) -> Value {
        match self {
            List::Json(items) => items.get(i).cloned().unwrap_or(Value::Null),
            List::Ints(items) => items.get(i).map_or(Value::Null, |n| Value::from(*n)),
        }
    }

    /// The last item as an element.
    pub(crate) fn last_elem(self) -> Option<Elem<'h>> {
        self.len().checked_sub(1).and_then(|i| self.elem(i))
    }

    /// The items `range`, clamped to the list.
    pub(crate) fn slice(self, start: usize, end: usize) -> List<'h> {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            List::Json(items) => List::Json(&items[start..end]),
            List::Ints(items) => List::Ints(&items[start..end]),
        }
    }

    /// True when the list is `other` or a prefix of it.
    pub(crate) fn is_prefix_of(self, other: List<'_>) -> bool {
        self.len() <= other.len() && self == other.slice(0, self.len())
    }

    /// True when some item is the element `elem`.
    pub(crate) fn contains(self, elem: Elem<'_>) -> bool {
        self.elems().any(|e| e == Some(elem))
    }

    /// The first item that is neither an integer nor a string, as JSON.
    pub(crate) fn first_bad(self) -> Option<Value> {
        match self {
            List::Json(items) => items
                .iter()
                .find(|v| !matches!(Elem::of(v), Some(Elem::Int(_) | Elem::Str(_))))
                .cloned(),
            List::Ints(_) => None,
        }
    }

    /// The list as JSON.
    pub(crate) fn to_json(self) -> Value {
        match self {
            List::Json(items) => Value::Array(items.to_vec()),
            List::Ints(items) => Value::Array(items.iter().map(|n| Value::from(*n)).collect()),
        }
    }
}

/// Equal items: JSON equality between JSON lists, else element by element.
impl PartialEq<List<'_>> for List<'_> {
    fn eq(&self, other: &List<'_>) -> bool {
        match (self, other) {
            (List::Json(a), List::Json(b)) => a == b,
            (List::Ints(a), List::Ints(b)) => a == b,
            _ => {
                self.len() == other.len()
                    && self
                        .elems()
                        .zip(other.elems())
                        .all(|(x, y)| x.is_some() && x == y)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_and_integer_lists_answer_alike() {
        let json = json!([1, 2, 3]);
        let ints = [1i64, 2, 3];
        let (a, b) = (MopValue::Json(&json).list_or_empty(), List::Ints(&ints));
        assert_eq!(a, b);
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(a.last_elem(), b.last_elem());
        assert!(a.slice(0, 2).is_prefix_of(b) && b.slice(0, 2).is_prefix_of(a));
        assert!(!b.is_prefix_of(a.slice(0, 2)));
        assert!(a.contains(Elem::Int(2)) && b.contains(Elem::Int(2)));
        assert_eq!(a.first_bad(), None);
        let bad = json!([1, [2]]);
        assert_eq!(
            MopValue::Json(&bad).list_or_empty().first_bad(),
            Some(json!([2]))
        );
        assert_eq!(
            MopValue::Int(4).to_string(),
            MopValue::Json(&json!(4)).to_string()
        );
        assert_eq!(MopValue::Ints(&ints).to_string(), json.to_string());
        assert!(MopValue::Null.is_null() && MopValue::Json(&Value::Null).is_null());
    }
}
