//! The CQL lexer: turns statement text into positioned tokens.
//!
//! Words are not split into keywords here. CQL reserves only a few dozen words and lets every
//! other keyword (`key`, `ttl`, `type`, `text`, ...) name a column, so the parser decides what a
//! word means from where it stands. The lexer only keeps the original spelling of each word.
//!
//! A leading `-` is never folded into a number here: `c = c -1` must stay an operator followed by
//! a literal. The parser turns `-` followed by a number into a negative literal where a term is
//! expected.

use super::SyntaxError;

/// What a token is. Literal payloads are already unescaped.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An unquoted word: keyword or identifier, original case (see `Token::text`).
    Word,
    /// A double-quoted identifier with `""` unescaped; case-sensitive.
    QuotedName(String),
    /// A string literal (`'...'` with `''` unescaped, or `$$...$$`).
    Str(String),
    Integer,
    Float,
    Uuid,
    Hex,
    Duration,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semicolon,
    Dot,
    Star,
    Colon,
    QMark,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Plus,
    Minus,
    PlusEq,
    MinusEq,
    Eof,
}

/// A token with its source text and position (line 1-based, column 0-based in characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub line: usize,
    pub column: usize,
}

/// Splits `input` into tokens; the last token is always `Eof`.
pub fn tokenize(input: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        line: 1,
        column: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia()?;
        let (line, column) = (lexer.line, lexer.column);
        let start = lexer.pos;
        let kind = if lexer.pos >= lexer.chars.len() {
            TokenKind::Eof
        } else {
            lexer.next_kind()?
        };
        let text = match &kind {
            TokenKind::Eof => "<EOF>".to_string(),
            _ => lexer.chars[start..lexer.pos].iter().collect(),
        };
        let done = kind == TokenKind::Eof;
        tokens.push(Token {
            kind,
            text,
            line,
            column,
        });
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer {
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError {
            line: self.line,
            column: self.column,
            message,
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek_at(0) {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('-') if self.peek_at(1) == Some('-') => self.skip_line(),
                Some('/') if self.peek_at(1) == Some('/') => self.skip_line(),
                Some('/') if self.peek_at(1) == Some('*') => self.skip_block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), SyntaxError> {
        let (line, column) = (self.line, self.column);
        self.bump_n(2);
        while self.pos < self.chars.len() {
            if self.starts_with("*/") {
                self.bump_n(2);
                return Ok(());
            }
            self.bump();
        }
        Err(SyntaxError {
            line,
            column,
            message: "unterminated comment".to_string(),
        })
    }

    fn next_kind(&mut self) -> Result<TokenKind, SyntaxError> {
        let c = self.peek_at(0).expect("caller checked for end of input");
        if self.uuid_ahead() {
            self.bump_n(36);
            return Ok(TokenKind::Uuid);
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        if c.is_ascii_alphabetic() {
            return Ok(self.word());
        }
        match c {
            '\'' => self.quoted('\'').map(TokenKind::Str),
            '"' => self.quoted('"').map(TokenKind::QuotedName),
            '$' if self.peek_at(1) == Some('$') => self.dollar_string(),
            _ => self.punctuation(c),
        }
    }

    fn punctuation(&mut self, c: char) -> Result<TokenKind, SyntaxError> {
        let two = |second: char, kind: TokenKind| (second, kind);
        let (pair, single) = match c {
            '(' => (None, TokenKind::LParen),
            ')' => (None, TokenKind::RParen),
            '[' => (None, TokenKind::LBracket),
            ']' => (None, TokenKind::RBracket),
            '{' => (None, TokenKind::LBrace),
            '}' => (None, TokenKind::RBrace),
            ',' => (None, TokenKind::Comma),
            ';' => (None, TokenKind::Semicolon),
            '.' => (None, TokenKind::Dot),
            '*' => (None, TokenKind::Star),
            ':' => (None, TokenKind::Colon),
            '?' => (None, TokenKind::QMark),
            '=' => (None, TokenKind::Eq),
            '<' => (Some(two('=', TokenKind::Lte)), TokenKind::Lt),
            '>' => (Some(two('=', TokenKind::Gte)), TokenKind::Gt),
            '+' => (Some(two('=', TokenKind::PlusEq)), TokenKind::Plus),
            '-' => (Some(two('=', TokenKind::MinusEq)), TokenKind::Minus),
            '!' if self.peek_at(1) == Some('=') => (Some(two('=', TokenKind::Neq)), TokenKind::Neq),
            _ => return Err(self.error(format!("token recognition error at: '{c}'"))),
        };
        if let Some((second, kind)) = pair {
            if self.peek_at(1) == Some(second) {
                self.bump_n(2);
                return Ok(kind);
            }
        }
        self.bump();
        Ok(single)
    }

    /// True if an unquoted 8-4-4-4-12 hex uuid starts here and is not part of a longer word.
    fn uuid_ahead(&self) -> bool {
        let groups = [8, 4, 4, 4, 12];
        let mut offset = 0;
        for (i, len) in groups.iter().enumerate() {
            for _ in 0..*len {
                match self.peek_at(offset) {
                    Some(c) if c.is_ascii_hexdigit() => offset += 1,
                    _ => return false,
                }
            }
            if i < groups.len() - 1 {
                if self.peek_at(offset) != Some('-') {
                    return false;
                }
                offset += 1;
            }
        }
        !self.peek_at(offset).is_some_and(is_word_char)
    }

    fn word(&mut self) -> TokenKind {
        let mut len = 0;
        while self.peek_at(len).is_some_and(is_word_char) {
            len += 1;
        }
        // ISO 8601 durations (P1Y2M, PT3H, P2W) look like words; they win as a literal.
        if let Some(end) = self.iso_duration_len(len) {
            self.bump_n(end);
            return TokenKind::Duration;
        }
        self.bump_n(len);
        TokenKind::Word
    }

    /// Length of an ISO 8601 duration starting here (`word_len` is the length of the plain word).
    fn iso_duration_len(&self, word_len: usize) -> Option<usize> {
        if !matches!(self.peek_at(0), Some('P' | 'p')) {
            return None;
        }
        let word: String = self.chars[self.pos..self.pos + word_len].iter().collect();
        let upper = word.to_ascii_uppercase();
        if iso_units_form(&upper[1..]) {
            return Some(word_len);
        }
        // The alternative form P0001-02-03T04:05:06 spans punctuation.
        let mut len = 1;
        while self
            .peek_at(len)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | 'T' | 't'))
        {
            len += 1;
        }
        let candidate: String = self.chars[self.pos + 1..self.pos + len].iter().collect();
        let alt = candidate.len() == 19
            && candidate.chars().enumerate().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == 'T' || c == 't',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            });
        let followed_by_word = self.peek_at(len).is_some_and(is_word_char);
        (alt && !followed_by_word).then_some(len)
    }

    fn number(&mut self) -> Result<TokenKind, SyntaxError> {
        if self.peek_at(0) == Some('0') && matches!(self.peek_at(1), Some('x' | 'X')) {
            let mut len = 2;
            while self.peek_at(len).is_some_and(|c| c.is_ascii_hexdigit()) {
                len += 1;
            }
            return self.finish_literal(len, TokenKind::Hex);
        }
        let mut len = self.digits_from(0);
        let mut kind = TokenKind::Integer;
        if self.peek_at(len) == Some('.') && self.peek_at(len + 1).is_none_or(|c| c != '.') {
            len += 1;
            len += self.digits_from(len);
            kind = TokenKind::Float;
        }
        if matches!(self.peek_at(len), Some('e' | 'E')) {
            let mut exp = len + 1;
            if matches!(self.peek_at(exp), Some('+' | '-')) {
                exp += 1;
            }
            let digits = self.digits_from(exp);
            if digits > 0 {
                return self.finish_literal(exp + digits, TokenKind::Float);
            }
        }
        if kind == TokenKind::Integer && self.peek_at(len).is_some_and(|c| c.is_alphabetic()) {
            if let Some(dlen) = self.unit_duration_len() {
                return self.finish_literal(dlen, TokenKind::Duration);
            }
        }
        self.finish_literal(len, kind)
    }

    fn digits_from(&self, offset: usize) -> usize {
        let mut len = 0;
        while self
            .peek_at(offset + len)
            .is_some_and(|c| c.is_ascii_digit())
        {
            len += 1;
        }
        len
    }

    /// Length of a `1h30m`-style duration starting here, if the whole run is one.
    fn unit_duration_len(&self) -> Option<usize> {
        let mut len = 0;
        loop {
            let digits = self.digits_from(len);
            if digits == 0 {
                break;
            }
            len += digits;
            let unit = ["ms", "mo", "us", "µs", "ns", "y", "w", "d", "h", "m", "s"]
                .iter()
                .find(|u| {
                    u.chars().enumerate().all(|(i, c)| {
                        self.peek_at(len + i)
                            .is_some_and(|x| x.to_lowercase().eq(c.to_lowercase()))
                    })
                })?;
            len += unit.chars().count();
        }
        (len > 0).then_some(len)
    }

    /// Consumes a literal of `len` chars, rejecting letters glued to its end (`12abc`).
    fn finish_literal(&mut self, len: usize, kind: TokenKind) -> Result<TokenKind, SyntaxError> {
        if self
            .peek_at(len)
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            let text: String = self.chars[self.pos..self.pos + len + 1].iter().collect();
            self.bump_n(len);
            return Err(self.error(format!("token recognition error at: '{text}'")));
        }
        self.bump_n(len);
        Ok(kind)
    }

    fn quoted(&mut self, quote: char) -> Result<String, SyntaxError> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut out = String::new();
        while let Some(c) = self.bump() {
            if c == quote {
                if self.peek_at(0) == Some(quote) {
                    self.bump();
                    out.push(quote);
                    continue;
                }
                return Ok(out);
            }
            out.push(c);
        }
        let what = if quote == '\'' {
            "string literal"
        } else {
            "quoted identifier"
        };
        Err(SyntaxError {
            line,
            column,
            message: format!("unterminated {what}"),
        })
    }

    fn dollar_string(&mut self) -> Result<TokenKind, SyntaxError> {
        let (line, column) = (self.line, self.column);
        self.bump_n(2);
        let mut out = String::new();
        while self.pos < self.chars.len() {
            if self.starts_with("$$") {
                self.bump_n(2);
                return Ok(TokenKind::Str(out));
            }
            if let Some(c) = self.bump() {
                out.push(c);
            }
        }
        Err(SyntaxError {
            line,
            column,
            message: "unterminated string literal".to_string(),
        })
    }
}

/// True for the body (after `P`) of `nYnMnWnDTnHnMnS`-style ISO durations.
pub(crate) fn iso_units_form(body: &str) -> bool {
    let mut digits = 0;
    let mut any = false;
    let mut in_time = false;
    let mut order = 0;
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            continue;
        }
        if c == 'T' && !in_time && digits == 0 {
            in_time = true;
            continue;
        }
        let rank = match (in_time, c) {
            (false, 'Y') => 1,
            (false, 'M') => 2,
            (false, 'W') => 3,
            (false, 'D') => 4,
            (true, 'H') => 5,
            (true, 'M') => 6,
            (true, 'S') => 7,
            _ => return false,
        };
        if digits == 0 || rank <= order {
            return false;
        }
        order = rank;
        digits = 0;
        any = true;
    }
    any && digits == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .expect("lexes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn literals() {
        use TokenKind::*;
        assert_eq!(
            kinds("1 1.5 1e10 2.5E-3 0xCAFE 0x 1h30m 500ms P1Y2M PT3H P2W 2d"),
            vec![
                Integer, Float, Float, Float, Hex, Hex, Duration, Duration, Duration, Duration,
                Duration, Duration, Eof
            ]
        );
        assert_eq!(
            kinds("123e4567-e89b-12d3-a456-426614174000 abcdefab-abcd-abcd-abcd-abcdefabcdef"),
            vec![Uuid, Uuid, Eof]
        );
        assert_eq!(kinds("P0001-02-03T04:05:06"), vec![Duration, Eof]);
        assert_eq!(kinds("pk ptr p"), vec![Word, Word, Word, Eof]);
    }

    #[test]
    fn strings_and_names() {
        assert_eq!(
            kinds("'it''s' $$a'b$$ \"Q\"\"x\""),
            vec![
                TokenKind::Str("it's".into()),
                TokenKind::Str("a'b".into()),
                TokenKind::QuotedName("Q\"x".into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn comments_and_positions() {
        let tokens = tokenize("-- c\n/* x\n y */ a // z\n  b").expect("lexes");
        assert_eq!((tokens[0].line, tokens[0].column), (3, 6));
        assert_eq!((tokens[1].line, tokens[1].column), (4, 2));
    }

    #[test]
    fn operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("<= >= != += -= < > - +"),
            vec![Lte, Gte, Neq, PlusEq, MinusEq, Lt, Gt, Minus, Plus, Eof]
        );
    }

    #[test]
    fn errors() {
        assert!(tokenize("'abc").is_err());
        assert!(tokenize("a # b").is_err());
        assert!(tokenize("12abc").is_err());
        assert!(tokenize("/* x").is_err());
    }
}
