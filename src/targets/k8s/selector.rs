//! Label selectors matched on this side: which Deployments' pod templates a
//! component's selector takes in, and which Deployment runs a given pod.
//! The grammar is the API server's (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`), so a selector means here what it means to
//! `kubectl get pods -l`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq)]
enum Term {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; every term must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector(Vec<Term>);

impl Selector {
    pub fn parse(sel: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for raw in split_terms(sel) {
            let t = raw.trim();
            if t.is_empty() {
                continue;
            }
            terms.push(term(t).ok_or_else(|| format!("selector term `{t}` is not understood"))?);
        }
        Ok(Selector(terms))
    }

    /// A Deployment's `spec.selector`: the pods it owns.
    pub fn of(ls: &LabelSelector) -> Selector {
        let mut terms: Vec<Term> = ls
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Term::Eq(k.clone(), v.clone()))
            .collect();
        for e in ls.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            terms.push(match e.operator.as_str() {
                "In" => Term::In(e.key.clone(), values),
                "NotIn" => Term::NotIn(e.key.clone(), values),
                "Exists" => Term::Exists(e.key.clone()),
                // DoesNotExist, and anything newer: the narrower reading.
                _ => Term::NotExists(e.key.clone()),
            });
        }
        Selector(terms)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|t| match t {
            Term::Eq(k, v) => labels.get(k) == Some(v),
            Term::NotEq(k, v) => labels.get(k) != Some(v),
            Term::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Term::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Term::Exists(k) => labels.contains_key(k),
            Term::NotExists(k) => !labels.contains_key(k),
        })
    }
}

fn term(t: &str) -> Option<Term> {
    let set = |rest: &str| -> Option<Vec<String>> {
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some((k, rest)) = t.split_once(" notin ") {
        return Some(Term::NotIn(k.trim().into(), set(rest)?));
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        return Some(Term::In(k.trim().into(), set(rest)?));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Some(Term::NotEq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Some(Term::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some(k) = t.strip_prefix('!') {
        return Some(Term::NotExists(k.trim().into()));
    }
    (!t.contains(char::is_whitespace)).then(|| Term::Exists(t.into()))
}

/// Splits on commas outside parentheses (`k in (a,b)` is one term).
pub(super) fn split_terms(sel: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, ch) in sel.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sel[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_the_api_server_does() {
        let v2 = labels(&[("app", "reviews"), ("version", "v2")]);
        let other = labels(&[("app", "ratings")]);
        for (sel, on_v2, on_other) in [
            ("app=reviews", true, false),
            ("app==reviews,version=v2", true, false),
            ("app=reviews,version!=v2", false, false),
            ("app in (reviews, ratings)", true, true),
            ("app in (reviews),version notin (v1,v3)", true, false),
            ("version", true, false),
            ("!version", false, true),
        ] {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.matches(&v2), on_v2, "{sel} on v2");
            assert_eq!(s.matches(&other), on_other, "{sel} on ratings");
        }
        assert!(Selector::parse("app in reviews").is_err());
    }

    #[test]
    fn a_deployments_own_selector_says_which_pods_it_runs() {
        let ls: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": { "app": "reviews" },
            "matchExpressions": [ { "key": "version", "operator": "In", "values": ["v2"] } ]
        }))
        .unwrap();
        let s = Selector::of(&ls);
        assert!(s.matches(&labels(&[
            ("app", "reviews"),
            ("version", "v2"),
            ("pod-template-hash", "5b5d6db9bb")
        ])));
        assert!(!s.matches(&labels(&[("app", "reviews"), ("version", "v3")])));
    }
}
