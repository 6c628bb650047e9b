//! The pages behind approval links: self-contained HTML, every value escaped.
//!
//! The confirmation page is the only one with a form, and its form posts back to the same URL.
//! Pages go out with [`HEADERS`]: the link's secret is in the URL, so no referrer may carry it
//! to the external review link, no cache may keep the page and no other site may frame it.

/// Headers for every approval page.
pub const HEADERS: &[(&str, &str)] = &[
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
];

/// An HTML page and its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    #[allow(missing_docs)]
    pub status: u16,
    #[allow(missing_docs)]
    pub html: String,
}

/// What an approval is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Details {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub stage: String,
    #[allow(missing_docs)]
    pub action: String,
    #[allow(missing_docs)]
    pub execution_id: String,
    /// The source revisions being approved.
    pub revisions: Vec<String>,
    /// The action's `CustomData`, variables resolved.
    pub custom_data: Option<String>,
    /// The action's `ExternalEntityLink`.
    pub external_link: Option<String>,
    /// When the links stop working.
    pub expires: String,
}

/// Where the approval stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It waits; the token decides it.
    Waiting {
        /// The engine's approval token.
        token: String,
    },
    /// Decided, through a link or otherwise.
    Decided {
        #[allow(missing_docs)]
        by: String,
        #[allow(missing_docs)]
        at: String,
        #[allow(missing_docs)]
        approved: bool,
    },
    /// Just decided through this page.
    Recorded(crate::ports::approvals::LinkUse),
    /// Past its deadline.
    Expired,
    /// A newer execution replaced this one.
    Superseded {
        /// The newer execution's id.
        by: Option<String>,
    },
    /// The execution was stopped.
    Stopped,
    /// No longer waiting (the stage was retried with new links, or the execution is gone).
    Gone,
}

/// The page for a link that is not one of ours. It never says which part was wrong.
pub(crate) fn invalid() -> Page {
    Page {
        status: 404,
        html: document(
            "Invalid link",
            "<h1>Invalid link</h1><p>This approval link is not valid. Use the link from the \
             notice exactly as it was sent.</p>",
        ),
    }
}

/// The page for a method other than GET and POST.
pub(crate) fn not_allowed() -> Page {
    Page { status: 405, html: document("Not allowed", "<h1>Not allowed</h1>") }
}

/// The page for a store that cannot be reached: nothing was decided.
pub(crate) fn unavailable() -> Page {
    Page {
        status: 503,
        html: document(
            "Try again",
            "<h1>Try again in a moment</h1><p>The approval service cannot be reached right now.              Nothing was decided.</p>",
        ),
    }
}

/// The page for a link that is ours.
pub(crate) fn render(details: &Details, verdict: &Verdict, approve: bool) -> Page {
    let verb = if approve { "Approve" } else { "Reject" };
    let facts = facts(details);
    let (status, title, body) = match verdict {
        Verdict::Waiting { .. } => (
            200,
            format!("{verb}: {}", details.pipeline),
            format!(
                "<h1>{verb} this release?</h1>{facts}\
                 <form method=\"post\">\
                 <label>Your name <input name=\"name\" maxlength=\"100\" autocomplete=\"name\"></label>\
                 <label>Comment <textarea name=\"comment\" maxlength=\"512\" rows=\"3\"></textarea></label>\
                 <button type=\"submit\" class=\"{cls}\">{verb}</button></form>\
                 <p class=\"note\">Nothing is decided until you press the button. The link works \
                 once and expires at {expires}.</p>",
                cls = verb.to_lowercase(),
                expires = escape(&details.expires),
            ),
        ),
        Verdict::Recorded(used) => (
            200,
            format!(
                "{}: {}",
                if used.approved { "Approved" } else { "Rejected" },
                details.pipeline
            ),
            format!(
                "<h1>{}</h1>{facts}<p>Recorded as {}. The pipeline carries on from here.</p>",
                if used.approved { "Approved" } else { "Rejected" },
                escape(&used.by),
            ),
        ),
        Verdict::Decided { by, at, approved } => (
            409,
            "Already decided".to_owned(),
            format!(
                "<h1>Already decided</h1>{facts}<p>This approval was already {} by {} at {}.</p>",
                if *approved { "approved" } else { "rejected" },
                escape(by),
                escape(at),
            ),
        ),
        Verdict::Expired => (
            410,
            "Expired".to_owned(),
            format!("<h1>Expired</h1>{facts}<p>This approval expired; the action failed.</p>"),
        ),
        Verdict::Superseded { by } => (
            410,
            "Superseded".to_owned(),
            format!(
                "<h1>Superseded</h1>{facts}<p>This execution was superseded by {}; approve that \
                 one instead.</p>",
                by.as_deref().map_or("a newer execution".to_owned(), |id| format!(
                    "execution {}",
                    escape(id)
                ))
            ),
        ),
        Verdict::Stopped => (
            410,
            "Stopped".to_owned(),
            format!("<h1>Stopped</h1>{facts}<p>This execution was stopped.</p>"),
        ),
        Verdict::Gone => (
            410,
            "No longer waiting".to_owned(),
            format!(
                "<h1>No longer waiting</h1>{facts}<p>This approval is no longer waiting for a \
                 decision. If the stage was retried, use the links of the newest notice.</p>"
            ),
        ),
    };
    Page { status, html: document(&title, &body) }
}

fn facts(d: &Details) -> String {
    let mut rows = vec![
        ("Pipeline", escape(&d.pipeline)),
        ("Stage / action", format!("{} / {}", escape(&d.stage), escape(&d.action))),
        ("Execution", escape(&d.execution_id)),
    ];
    for r in &d.revisions {
        rows.push(("Revision", escape(r)));
    }
    if let Some(c) = d.custom_data.as_deref().filter(|c| !c.is_empty()) {
        rows.push(("Details", escape(c)));
    }
    if let Some(l) = d.external_link.as_deref().filter(|l| !l.is_empty()) {
        // Only web links become links: a `javascript:` URL in a declaration must not run.
        let shown = if l.starts_with("https://") || l.starts_with("http://") {
            format!("<a href=\"{0}\" rel=\"noreferrer noopener\">{0}</a>", escape(l))
        } else {
            escape(l)
        };
        rows.push(("Review", shown));
    }
    let rows: String =
        rows.into_iter().map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>")).collect();
    format!("<table>{rows}</table>")
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{} - Baton</title><style>{STYLE}</style>\
         </head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f5f5f4;color:#1c1917;margin:0}\
main{max-width:40rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem;\
box-shadow:0 1px 3px #0002}table{border-collapse:collapse;width:100%;margin:1rem 0}\
th{text-align:left;color:#57534e;padding:.3rem 1rem .3rem 0;vertical-align:top;white-space:nowrap}\
td{padding:.3rem 0;white-space:pre-wrap;word-break:break-word}label{display:block;margin:.8rem 0}\
input,textarea{display:block;width:100%;box-sizing:border-box;padding:.4rem;margin-top:.2rem}\
button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;color:#fff;cursor:pointer}\
.approve{background:#15803d}.reject{background:#b91c1c}.note{color:#57534e;font-size:.9rem}";

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> Details {
        Details {
            pipeline: "<script>alert(1)</script>".into(),
            stage: "Approve".into(),
            action: "Manual".into(),
            execution_id: "e-1".into(),
            revisions: vec!["Source: commit abc \"fix\"".into()],
            custom_data: Some("Check <b>staging</b>".into()),
            external_link: Some("javascript:alert(1)".into()),
            expires: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn every_value_is_escaped_and_only_web_links_are_links() {
        let page = render(&details(), &Verdict::Waiting { token: "t".into() }, true);
        assert_eq!(page.status, 200);
        assert!(!page.html.contains("<script>alert"), "{}", page.html);
        assert!(page.html.contains("&lt;script&gt;"));
        assert!(!page.html.contains("href=\"javascript"), "{}", page.html);
        assert!(page.html.contains("&quot;fix&quot;"));
    }

    #[test]
    fn only_the_waiting_page_has_a_form_and_its_button_says_the_decision() {
        let waiting = render(&details(), &Verdict::Waiting { token: "t".into() }, false);
        assert!(waiting.html.contains("<form method=\"post\">"));
        assert!(waiting.html.contains(">Reject</button>"));
        let superseded = Verdict::Superseded { by: Some("e-2".into()) };
        assert!(render(&details(), &superseded, true).html.contains("superseded by execution e-2"));
        for verdict in [Verdict::Expired, superseded, Verdict::Stopped, Verdict::Gone] {
            let page = render(&details(), &verdict, true);
            assert!(!page.html.contains("<form"), "{verdict:?}");
            assert_eq!(page.status, 410);
        }
        let decided = render(
            &details(),
            &Verdict::Decided { by: "ana".into(), at: "now".into(), approved: true },
            true,
        );
        assert_eq!(decided.status, 409);
        assert!(decided.html.contains("already approved by ana"));
        assert_eq!(invalid().status, 404);
    }
}
