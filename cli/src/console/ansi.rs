//! A build's output as HTML: its colours (SGR sequences) become classes, since the page's
//! policy allows no inline style; every other escape sequence is dropped; the text is escaped.
//! Crates that render ANSI to HTML write inline styles, which that policy would block.

/// The SGR attributes in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if let Some(f) = self.fg {
            c.push(format!("a-f{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("a-g{b}"));
        }
        for (on, name) in
            [(self.bold, "a-b"), (self.dim, "a-d"), (self.italic, "a-i"), (self.underline, "a-u")]
        {
            if on {
                c.push(name.to_owned());
            }
        }
        c.join(" ")
    }

    /// Applies one SGR sequence's parameters (`1;31`, `38;5;208`, ...).
    fn apply(&mut self, params: &str) {
        let mut ps = params.split(';').map(|p| p.parse::<u16>().unwrap_or(0));
        while let Some(p) = ps.next() {
            match p {
                0 => *self = Self::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((p - 30) as u8),
                90..=97 => self.fg = Some((p - 90 + 8) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((p - 40) as u8),
                100..=107 => self.bg = Some((p - 100 + 8) as u8),
                49 => self.bg = None,
                // 256 colours keep their first 16; true colour has no class and is dropped.
                38 | 48 => {
                    let colour = match ps.next() {
                        Some(5) => ps.next().filter(|n| *n < 16).map(|n| n as u8),
                        Some(2) => {
                            ps.by_ref().take(3).for_each(drop);
                            None
                        }
                        _ => None,
                    };
                    if p == 38 { self.fg = colour } else { self.bg = colour }
                }
                _ => {}
            }
        }
    }
}

/// Escapes text as the templates do.
fn escape(text: &str, out: &mut String) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = maud::Escaper::new(out).write_str(text);
}

/// One line of output (no newline) as HTML; `style` carries colours over from line to line.
fn line_html(line: &str, style: &mut Style) -> String {
    let mut out = String::new();
    let mut text = String::new();
    let flush = |text: &mut String, style: &Style, out: &mut String| {
        if text.is_empty() {
            return;
        }
        let classes = style.classes();
        if classes.is_empty() {
            escape(text, out);
        } else {
            out.push_str(&format!("<span class=\"{classes}\">"));
            escape(text, out);
            out.push_str("</span>");
        }
        text.clear();
    };
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                flush(&mut text, style, &mut out);
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        let mut params = String::new();
                        // CSI: parameters and intermediates, then one final byte (@ to ~).
                        for n in chars.by_ref() {
                            if ('@'..='~').contains(&n) {
                                if n == 'm' {
                                    style.apply(&params);
                                }
                                break;
                            }
                            params.push(n);
                        }
                    }
                    Some(']') => {
                        // OSC (titles, hyperlinks): up to BEL or ESC \.
                        while let Some(n) = chars.next() {
                            if n == '\u{7}' || (n == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    _ => {
                        chars.next();
                    }
                }
            }
            // A carriage return redraws the line on a terminal: keep what was drawn last.
            '\r' if chars.peek().is_some() => {
                flush(&mut text, style, &mut out);
                out.clear();
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => text.push(c),
        }
    }
    flush(&mut text, style, &mut out);
    out
}

/// Lines of output as HTML (a block each), numbered from `first` (1-based), each with an anchor of its own.
pub(crate) fn lines_html(text: &str, first: usize) -> String {
    let mut style = Style::default();
    let mut out = String::with_capacity(text.len() * 2);
    for (i, line) in text.lines().enumerate() {
        let n = first + i;
        out.push_str(&format!(
            "<span class=\"line\" id=\"L{n}\"><a class=\"ln\" href=\"#L{n}\" aria-label=\"line {n}\">{n}</a>"
        ));
        out.push_str(&line_html(line, &mut style));
        // No newline between lines: each is a block, and a newline would draw an empty line.
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> String {
        line_html(line, &mut Style::default())
    }

    #[test]
    fn colours_become_classes_and_text_is_escaped() {
        assert_eq!(
            one("\u{1b}[1;31merror\u{1b}[0m: <b>"),
            "<span class=\"a-f1 a-b\">error</span>: &lt;b&gt;"
        );
        assert_eq!(one("\u{1b}[38;5;10mok\u{1b}[39m"), "<span class=\"a-f10\">ok</span>");
        assert_eq!(one("\u{1b}[38;2;1;2;3mtrue colour"), "true colour");
        assert_eq!(one("\u{1b}[92;44mx"), "<span class=\"a-f10 a-g4\">x</span>");
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        assert_eq!(one("a\u{1b}[2Kb\u{1b}]0;title\u{7}c\u{1b}]8;;http://x\u{1b}\\d\u{8}"), "abcd");
        assert_eq!(one("10%\r50%\r100%"), "100%");
        assert_eq!(one("crlf\r"), "crlf");
        assert_eq!(one("unterminated \u{1b}["), "unterminated ");
    }

    #[test]
    fn a_colour_carries_over_lines_and_each_line_has_an_anchor() {
        let html = lines_html("\u{1b}[32mgreen\nstill green\u{1b}[0m\nplain", 41);
        assert!(html.contains("id=\"L41\""), "{html}");
        assert!(html.contains("<span class=\"a-f2\">still green</span>"), "{html}");
        assert!(html.contains("href=\"#L43\"") && html.ends_with("plain</span>"), "{html}");
    }

    #[test]
    fn script_in_output_is_text() {
        let html =
            lines_html("<script>alert(1)</script>\u{1b}[31m\"'><img src=x onerror=alert(2)>", 1);
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
    }
}
