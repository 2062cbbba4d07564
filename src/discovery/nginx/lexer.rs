//! nginx's tokenizer, following `ngx_conf_read_token`: words end at
//! whitespace, `;` or `{` (but `${` inside a word opens a variable, not a
//! block); `"…"` and `'…'` quote with `\"`, `\'`, `\\`, `\t`, `\r`, `\n`
//! escapes; `#` at the start of a token comments to the end of the line;
//! `\` makes the next character ordinary.
//!
//! Invariants: one pass, no backtracking, every error carries line:col.
//! Bytes that are not UTF-8 are an error inside tokens and ignored inside
//! comments (where Latin-1 notes are common).

use super::super::source::line_col;

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A word or a quoted string (its quotes and escapes removed).
    Word(String),
    Open,
    Close,
    Semi,
    Eof,
}

/// A lexing error: message and 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            self.col += 1;
        }
        Some(c)
    }

    fn err(line: u32, col: u32, message: impl Into<String>) -> LexError {
        LexError {
            line,
            col,
            message: message.into(),
        }
    }

    /// The next token, or an error with its place.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        loop {
            match self.peek() {
                None => {
                    return Ok(Token {
                        kind: Kind::Eof,
                        line: self.line,
                        col: self.col,
                    });
                }
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => {
                    // Skip to the newline; the bump over it resets the column.
                    let rest = &self.src[self.pos..];
                    if let Some(n) = memchr::memchr(b'\n', rest) {
                        self.pos += n;
                    } else {
                        self.col += rest.iter().filter(|&&c| c & 0xC0 != 0x80).count() as u32;
                        self.pos = self.src.len();
                    }
                }
                Some(c) => {
                    let (line, col) = (self.line, self.col);
                    let kind = match c {
                        b'{' => {
                            self.bump();
                            Kind::Open
                        }
                        b'}' => {
                            self.bump();
                            Kind::Close
                        }
                        b';' => {
                            self.bump();
                            Kind::Semi
                        }
                        b'"' | b'\'' => Kind::Word(self.quoted(c)?),
                        _ => Kind::Word(self.word()?),
                    };
                    return Ok(Token { kind, line, col });
                }
            }
        }
    }

    /// Skip the Lua source of a `*_by_lua_block { ... }` (its `{` already
    /// read) up to the matching `}`, as lua-nginx-module does: braces inside
    /// Lua strings (`"…"`, `'…'`, `[[…]]`, `[==[…]==]`) and comments (`--`,
    /// `--[[…]]`) do not count. Returns the source without the braces.
    pub fn lua_block(&mut self) -> Result<String, LexError> {
        let (line, col) = (self.line, self.col);
        let start = self.pos;
        let mut depth = 1usize;
        while let Some(c) = self.bump() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let body = &self.src[start..self.pos - 1];
                        return Ok(String::from_utf8_lossy(body).into_owned());
                    }
                }
                b'"' | b'\'' => {
                    while let Some(x) = self.bump() {
                        match x {
                            b'\\' => {
                                self.bump();
                            }
                            b'\n' => break,
                            x if x == c => break,
                            _ => {}
                        }
                    }
                }
                b'[' if matches!(self.peek(), Some(b'[' | b'=')) => self.lua_long_bracket(),
                b'-' if self.peek() == Some(b'-') => {
                    self.bump();
                    if self.peek() == Some(b'[') {
                        self.bump();
                        if matches!(self.peek(), Some(b'[' | b'=')) {
                            self.lua_long_bracket();
                            continue;
                        }
                    }
                    while let Some(x) = self.peek() {
                        if x == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => {}
            }
        }
        Err(Self::err(
            line,
            col,
            "Lua block is never closed (end of file, expecting \"}\")",
        ))
    }

    /// After `[`: skip `=*[ … ]=*]` (a Lua long string or comment).
    fn lua_long_bracket(&mut self) {
        let mut level = 0usize;
        while self.peek() == Some(b'=') {
            self.bump();
            level += 1;
        }
        if self.peek() != Some(b'[') {
            return; // an index such as t[=…: not a long bracket
        }
        self.bump();
        while let Some(c) = self.bump() {
            if c == b']' {
                let mut n = 0usize;
                while self.peek() == Some(b'=') {
                    self.bump();
                    n += 1;
                }
                if n == level && self.peek() == Some(b']') {
                    self.bump();
                    return;
                }
            }
        }
    }

    fn quoted(&mut self, q: u8) -> Result<String, LexError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(Self::err(
                        line,
                        col,
                        format!(
                            "unterminated {} string (no closing {} before the end of the file)",
                            if q == b'"' {
                                "double-quoted"
                            } else {
                                "single-quoted"
                            },
                            q as char
                        ),
                    ));
                }
                Some(b'\\') => match self.bump() {
                    Some(c @ (b'"' | b'\'' | b'\\')) => out.push(c),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'n') => out.push(b'\n'),
                    Some(c) => {
                        out.push(b'\\');
                        out.push(c);
                    }
                    None => {}
                },
                Some(c) if c == q => break,
                Some(0) => return Err(self.nul()),
                Some(c) => out.push(c),
            }
        }
        // nginx: a closing quote must be followed by a separator.
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' | b')') => {}
            Some(c) => {
                return Err(Self::err(
                    self.line,
                    self.col,
                    format!(
                        "unexpected {:?} right after a quoted string (a space or ';' is needed)",
                        c as char
                    ),
                ));
            }
        }
        Self::utf8(out, line, col)
    }

    fn word(&mut self) -> Result<String, LexError> {
        let (line, col) = (self.line, self.col);
        let mut out = Vec::new();
        let mut variable = false;
        while let Some(c) = self.peek() {
            // Fast path: a run of ordinary bytes (never a newline) at once.
            let start = self.pos;
            while let Some(&b) = self.src.get(self.pos) {
                if matches!(
                    b,
                    b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'\\' | b'$' | 0
                ) {
                    break;
                }
                self.pos += 1;
                if b & 0xC0 != 0x80 {
                    self.col += 1;
                }
            }
            if self.pos > start {
                out.extend_from_slice(&self.src[start..self.pos]);
                variable = false;
                continue;
            }
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' => break,
                b'{' if !variable => break,
                b'\\' => {
                    self.bump();
                    match self.bump() {
                        Some(c @ (b'"' | b'\'' | b'\\')) => out.push(c),
                        Some(b't') => out.push(b'\t'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'n') => out.push(b'\n'),
                        Some(c) => {
                            out.push(b'\\');
                            out.push(c);
                        }
                        None => out.push(b'\\'),
                    }
                    variable = false;
                    continue;
                }
                0 => return Err(self.nul()),
                _ => {}
            }
            variable = c == b'$';
            out.push(c);
            self.bump();
        }
        Self::utf8(out, line, col)
    }

    fn nul(&self) -> LexError {
        Self::err(
            self.line,
            self.col,
            "NUL byte: this is not a text configuration file",
        )
    }

    fn utf8(bytes: Vec<u8>, line: u32, col: u32) -> Result<String, LexError> {
        String::from_utf8(bytes).map_err(|e| {
            let off = e.utf8_error().valid_up_to();
            let b = e.as_bytes()[off];
            Self::err(
                line,
                col,
                format!("invalid UTF-8 (byte 0x{b:02X}, {off} bytes into this token)"),
            )
        })
    }

    /// Line and column of the current position.
    pub fn here(&self) -> (u32, u32) {
        line_col(self.src, self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Kind> {
        let mut l = Lexer::new(s.as_bytes());
        let mut v = Vec::new();
        loop {
            let t = l.next_token().unwrap();
            if t.kind == Kind::Eof {
                return v;
            }
            v.push(t.kind);
        }
    }

    fn w(s: &str) -> Kind {
        Kind::Word(s.into())
    }

    #[test]
    fn quoted_braces_and_escapes_stay_in_the_word() {
        assert_eq!(
            words(r#"return 200 "a { b } \"c\" \\ ;";"#),
            vec![w("return"), w("200"), w(r#"a { b } "c" \ ;"#), Kind::Semi]
        );
        assert_eq!(words("x 'it\\'s';"), vec![w("x"), w("it's"), Kind::Semi]);
    }

    #[test]
    fn comments_only_at_token_start() {
        assert_eq!(
            words("a b#c; # comment ; {\nd;"),
            vec![w("a"), w("b#c"), Kind::Semi, w("d"), Kind::Semi]
        );
    }

    #[test]
    fn variable_braces_do_not_open_blocks() {
        assert_eq!(
            words("set $a ${host}x;"),
            vec![w("set"), w("$a"), w("${host}x"), Kind::Semi]
        );
        assert_eq!(
            words("location /{a}"),
            vec![w("location"), w("/"), Kind::Open, w("a}")]
        );
    }

    #[test]
    fn unterminated_string_points_at_its_start() {
        let mut l = Lexer::new(b"a;\n  b \"open\n\n");
        l.next_token().unwrap();
        l.next_token().unwrap();
        l.next_token().unwrap();
        let e = l.next_token().unwrap_err();
        assert_eq!((e.line, e.col), (2, 5));
        assert!(e.message.contains("unterminated"), "{}", e.message);
    }

    #[test]
    fn invalid_utf8_in_token_is_an_error_but_not_in_comments() {
        assert_eq!(words("# caf\u{e9}\na;").len(), 2);
        let mut l = Lexer::new(b"a caf\xE9;");
        l.next_token().unwrap();
        let e = l.next_token().unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
        assert!(e.message.contains("0xE9"), "{}", e.message);
        let mut l = Lexer::new(b"# caf\xE9\nok;");
        assert_eq!(l.next_token().unwrap().kind, w("ok"));
    }

    #[test]
    fn lua_blocks_skip_braces_in_lua_strings_and_comments() {
        let src = "content_by_lua_block {\n  local t = { a = \"}\", b = '{' }\n  --[==[ } ]==]\n  -- }\n  ngx.say([[ } ]])\n}\nlisten 80;";
        let text = "http { server { location / { ".to_owned() + src + " } } }";
        let d =
            crate::discovery::nginx::parse_str(&text, std::path::Path::new("/x/n.conf")).unwrap();
        let loc = &d[0].children()[0].children()[0];
        let lua = loc.last("content_by_lua_block").unwrap();
        assert!(lua.arg(0).unwrap().contains("ngx.say([[ } ]])"));
        assert_eq!(loc.last("listen").unwrap().arg(0), Some("80"));
        let err = crate::discovery::nginx::parse_str(
            "http {\n  init_by_lua_block { local s = [[ }\n}\n",
            std::path::Path::new("/x/n.conf"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("n.conf:2:") && err.contains("Lua block"),
            "{err}"
        );
    }
}
