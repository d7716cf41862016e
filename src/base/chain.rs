//! An error and its causes on one line, so the real cause is not hidden
//! behind a wrapper ("client error (Connect)": the refused connection or the
//! unknown certificate issuer is in its sources). A cause whose text the line
//! already holds is not repeated.

use std::error::Error;

/// `outer: cause: root cause`.
pub(crate) fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn every_cause_once_outermost_first() {
        let root = E("connection refused", None);
        let mid = E(
            "tcp connect error: connection refused",
            Some(Box::new(root)),
        );
        let top = E("client error (Connect)", Some(Box::new(mid)));
        assert_eq!(
            chain(&top),
            "client error (Connect): tcp connect error: connection refused"
        );
        assert_eq!(chain(&E("alone", None)), "alone");
    }
}
