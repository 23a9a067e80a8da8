//! The pre-parse scan: source size and bracket nesting depth, checked before Boa sees the
//! source.
//!
//! Boa's parser is recursive descent: a few hundred nested `(` overflow its stack and abort
//! the whole process (docs/dependencies.md, "boa_engine"). So nesting is measured by this
//! small, non-recursive lexer first. It knows just enough JavaScript to not count brackets
//! inside strings, comments, template literals and regex literals; template substitutions
//! (`${ ... }`) count as one level themselves.
//!
//! Where `/` is ambiguous (regex or division) the scanner prefers "division": if it guesses
//! wrong it over-counts a regex's brackets, which at worst refuses an odd script; the other
//! mistake would hide real brackets from the count and let Boa overflow.

use crate::check::CheckError;

/// What an open bracket is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(`, `[` or `{`: closed by the matching bracket.
    Bracket,
    /// `${` inside a template literal: its `}` resumes the template text.
    Substitution,
}

/// Checks size and nesting depth. The error carries the 1-based line and column of the first
/// bracket that goes too deep.
pub fn scan(source: &str, max_bytes: u64, max_depth: u32) -> Result<(), CheckError> {
    if source.len() as u64 > max_bytes {
        return Err(CheckError {
            line: 1,
            column: 1,
            message: format!(
                "script is {} bytes; the limit is {max_bytes} bytes",
                source.len()
            ),
        });
    }
    Scanner::new(source, max_depth).run()
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
    stack: Vec<Open>,
    max_depth: u32,
    /// Whether a `/` here starts a regex literal (true after an operator or at the start).
    regex_allowed: bool,
}

impl<'a> Scanner<'a> {
    fn new(source: &'a str, max_depth: u32) -> Self {
        Scanner {
            chars: source.chars().peekable(),
            line: 1,
            column: 0,
            stack: Vec::new(),
            max_depth,
            regex_allowed: true,
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn open(&mut self, kind: Open) -> Result<(), CheckError> {
        self.stack.push(kind);
        if self.stack.len() as u64 > u64::from(self.max_depth) {
            return Err(CheckError {
                line: self.line,
                column: self.column,
                message: format!(
                    "brackets are nested more than {} deep; split the code into functions",
                    self.max_depth
                ),
            });
        }
        Ok(())
    }

    fn run(mut self) -> Result<(), CheckError> {
        while let Some(c) = self.next() {
            match c {
                '(' | '[' | '{' => {
                    self.open(Open::Bracket)?;
                    self.regex_allowed = true;
                }
                ')' | ']' => {
                    // Unbalanced closers are Boa's to report; the count just saturates.
                    self.stack.pop();
                    self.regex_allowed = false;
                }
                '}' => {
                    if self.stack.pop() == Some(Open::Substitution) {
                        self.template()?;
                    } else {
                        // `}` ends a block (regex may follow) or an object literal (division
                        // may follow): assume division, which over-counts rather than
                        // under-counts.
                        self.regex_allowed = false;
                    }
                }
                '\'' | '"' => {
                    self.string(c);
                    self.regex_allowed = false;
                }
                '`' => self.template()?,
                '/' => match self.peek() {
                    Some('/') => self.line_comment(),
                    Some('*') => {
                        self.next();
                        self.block_comment();
                    }
                    _ if self.regex_allowed => {
                        self.regex();
                        self.regex_allowed = false;
                    }
                    _ => self.regex_allowed = true,
                },
                c if c.is_whitespace() => {}
                c if is_word_char(c) => {
                    let word = self.word(c);
                    self.regex_allowed = REGEX_AFTER_WORDS.contains(&word.as_str());
                }
                _ => self.regex_allowed = true,
            }
        }
        Ok(())
    }

    fn word(&mut self, first: char) -> String {
        let mut word = String::from(first);
        while let Some(c) = self.peek() {
            if !is_word_char(c) {
                break;
            }
            word.push(c);
            self.next();
        }
        word
    }

    /// A quoted string; ends at the closing quote or, if unterminated, at the line end (where
    /// Boa will refuse it anyway).
    fn string(&mut self, quote: char) {
        while let Some(c) = self.next() {
            match c {
                '\\' => {
                    self.next();
                }
                '\n' | '\r' => return,
                c if c == quote => return,
                _ => {}
            }
        }
    }

    /// Template text up to the closing backtick, or up to a `${` (which opens a level that
    /// the matching `}` closes, resuming the text).
    fn template(&mut self) -> Result<(), CheckError> {
        while let Some(c) = self.next() {
            match c {
                '\\' => {
                    self.next();
                }
                '`' => {
                    self.regex_allowed = false;
                    return Ok(());
                }
                '$' if self.peek() == Some('{') => {
                    self.next();
                    self.regex_allowed = true;
                    return self.open(Open::Substitution);
                }
                _ => {}
            }
        }
        self.regex_allowed = false;
        Ok(())
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                return;
            }
            self.next();
        }
    }

    fn block_comment(&mut self) {
        while let Some(c) = self.next() {
            if c == '*' && self.peek() == Some('/') {
                self.next();
                return;
            }
        }
    }

    /// A regex literal: ends at an unescaped `/` outside a character class, or at the line
    /// end (regex literals cannot span lines).
    fn regex(&mut self) {
        let mut in_class = false;
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                return;
            }
            self.next();
            match c {
                '\\' if self.peek().is_some_and(|c| c != '\n' && c != '\r') => {
                    self.next();
                }
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => return,
                _ => {}
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '\\'
}

/// Reserved words after which `/` starts a regex. Contextual keywords that can also be plain
/// identifiers (`of`, `yield`, `await`, `let`) are left out on purpose: for them "division" is
/// the safe guess.
const REGEX_AFTER_WORDS: &[&str] = &[
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "instanceof",
    "new",
    "delete",
    "void",
    "throw",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(src: &str, depth: u32) -> bool {
        scan(src, 1 << 20, depth).is_ok()
    }

    #[test]
    fn counts_every_bracket_kind() {
        assert!(depth_ok("f([{}])", 3));
        assert!(!depth_ok("f([{}])", 2));
    }

    #[test]
    fn reports_line_and_column_of_the_bracket_too_deep() {
        let err = scan("let a = 1;\n  x = ((1));", 1 << 20, 1).unwrap_err();
        assert_eq!((err.line, err.column), (2, 8));
    }

    #[test]
    fn brackets_in_strings_comments_and_regexes_do_not_count() {
        let src = r#"
            const s = "((((" + '[[[[' ; // ((((
            /* {{{{ */
            const r = /\(\(\([(]/g;
            const t = x.replace(/[)(]+/, "");
        "#;
        assert!(depth_ok(src, 1));
    }

    #[test]
    fn template_substitutions_count_as_a_level() {
        assert!(depth_ok("`a ${ b } c`", 1));
        assert!(!depth_ok("`a ${ f(b) } c`", 1));
        assert!(depth_ok("`(((( ${ `inner ${x}` } ))))`", 2));
        assert!(!depth_ok("`${ `${ `${x}` }` }`", 2));
    }

    #[test]
    fn division_after_a_value_is_not_a_regex() {
        // If `/` after `a` were taken for a regex, the parentheses would be hidden.
        let src = format!("x = a / {}1{} / 2", "(".repeat(10), ")".repeat(10));
        assert!(!depth_ok(&src, 5));
    }

    #[test]
    fn an_unterminated_string_stops_at_the_line_end() {
        let src = format!("x = 'open\n{}", "(".repeat(10));
        assert!(!depth_ok(&src, 5));
    }

    #[test]
    fn size_limit_is_checked_first() {
        let err = scan("abcdef", 5, 64).unwrap_err();
        assert!(err.message.contains("limit is 5 bytes"), "{}", err.message);
    }

    #[test]
    fn hostile_input_never_panics() {
        for src in [
            "`${", "}}}}", "/", "/[", "\\", "'\\", "`\\", "/*", "${}`", "a/",
        ] {
            let _ = scan(src, 1 << 20, 64);
        }
    }
}
