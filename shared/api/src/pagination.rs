//! `nextToken` / `maxResults`: a token is the position of the next item, tied to the operation
//! that issued it so it cannot be replayed on another list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ApiError;

/// Which slice of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Page {
    /// Index of the first item.
    pub start: usize,
    /// Most items to return.
    pub size: usize,
}

impl Page {
    /// Reads `nextToken` and `maxResults` (1..=`limit`, `default` when absent).
    pub(super) fn read(
        list: &str,
        token: Option<&str>,
        max_results: Option<i64>,
        default: usize,
        limit: usize,
    ) -> Result<Self, ApiError> {
        let size = match max_results {
            None => default,
            Some(n) if n < 1 => {
                return Err(ApiError::constraint(
                    "maxResults",
                    &format!("'{n}'"),
                    "Member must have value greater than or equal to 1",
                ));
            }
            Some(n) if n as u64 > limit as u64 => {
                return Err(ApiError::constraint(
                    "maxResults",
                    &format!("'{n}'"),
                    &format!("Member must have value less than or equal to {limit}"),
                ));
            }
            Some(n) => usize::try_from(n).unwrap_or(limit),
        };
        let start = match token {
            None => 0,
            Some(t) => decode(list, t).ok_or_else(ApiError::invalid_next_token)?,
        };
        Ok(Self { start, size })
    }

    /// The page of `items`, and the token of the next page if there is one.
    pub(super) fn slice<T>(&self, list: &str, items: Vec<T>) -> (Vec<T>, Option<String>) {
        let total = items.len();
        let end = self.start.saturating_add(self.size).min(total);
        let page: Vec<T> = items.into_iter().skip(self.start).take(self.size).collect();
        let next = (end < total).then(|| encode(list, end));
        (page, next)
    }
}

fn encode(list: &str, position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{position}"))
}

fn decode(list: &str, token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (which, position) = text.split_once(':')?;
    (which == list).then(|| position.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_until_the_end() {
        let items: Vec<u32> = (0..5).collect();
        let first = Page::read("l", None, Some(2), 100, 100).unwrap();
        let (a, next) = first.slice("l", items.clone());
        assert_eq!(a, vec![0, 1]);
        let second = Page::read("l", next.as_deref(), Some(2), 100, 100).unwrap();
        let (b, next) = second.slice("l", items.clone());
        assert_eq!(b, vec![2, 3]);
        let third = Page::read("l", next.as_deref(), Some(2), 100, 100).unwrap();
        let (c, next) = third.slice("l", items);
        assert_eq!((c, next), (vec![4], None));
    }

    #[test]
    fn a_token_of_another_list_or_garbage_is_refused() {
        let (_, next) = Page { start: 0, size: 1 }.slice("a", vec![1, 2]);
        let e = Page::read("b", next.as_deref(), None, 10, 10).unwrap_err();
        assert_eq!(e.code, "InvalidNextTokenException");
        assert!(Page::read("a", Some("%%%"), None, 10, 10).is_err());
        assert!(Page::read("a", next.as_deref(), None, 10, 10).is_ok());
    }

    #[test]
    fn max_results_out_of_bounds_is_a_validation_error() {
        for n in [0, 101] {
            let e = Page::read("l", None, Some(n), 10, 100).unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert!(e.message.contains("maxResults"), "{}", e.message);
        }
    }
}
