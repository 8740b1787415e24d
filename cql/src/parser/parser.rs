//! The recursive-descent core: token cursor, names, types, terms, selectors and relations.
//!
//! Statement rules live in `dml.rs` and `ddl.rs` as further `impl Parser` blocks. Keywords are
//! matched by spelling (`at_word("from")`), so any unreserved keyword keeps working as an
//! identifier wherever the grammar expects a name.

use super::ast::*;
use super::lexer::{Token, TokenKind};
use super::SyntaxError;

pub(crate) type PResult<T> = Result<T, SyntaxError>;

/// A cursor over tokens plus the bind-marker counter of the statement being parsed.
pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current nesting of terms, types and selectors; bounded so hostile input such as
    /// ten thousand `[` cannot overflow the stack.
    depth: usize,
    pub(crate) bind_names: Vec<Option<String>>,
}

/// Deepest nesting of terms, types or selectors accepted.
const MAX_DEPTH: usize = 64;

impl Parser {
    /// `tokens` must end with `Eof` (as `lexer::tokenize` guarantees).
    pub(crate) fn new(tokens: Vec<Token>) -> Parser {
        assert!(
            tokens.last().is_some_and(|t| t.kind == TokenKind::Eof),
            "token stream must end with Eof"
        );
        Parser {
            tokens,
            pos: 0,
            depth: 0,
            bind_names: Vec::new(),
        }
    }

    pub(crate) fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    pub(crate) fn peek_nth(&self, n: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + n).min(last)]
    }

    pub(crate) fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    pub(crate) fn at(&self, kind: &TokenKind) -> bool {
        self.peek().kind == *kind
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.at(&TokenKind::Eof)
    }

    pub(crate) fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = self.at(kind);
        if found {
            self.advance();
        }
        found
    }

    pub(crate) fn expect(&mut self, kind: &TokenKind, expecting: &str) -> PResult<Token> {
        if self.at(kind) {
            Ok(self.advance())
        } else {
            Err(self.mismatch(expecting))
        }
    }

    pub(crate) fn word_at(&self, n: usize, word: &str) -> bool {
        let token = self.peek_nth(n);
        token.kind == TokenKind::Word && token.text.eq_ignore_ascii_case(word)
    }

    pub(crate) fn at_word(&self, word: &str) -> bool {
        self.word_at(0, word)
    }

    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        if found {
            self.advance();
        }
        found
    }

    /// Consumes the keyword `word` or fails with "expecting WORD".
    pub(crate) fn expect_word(&mut self, word: &str) -> PResult<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.mismatch(&word.to_ascii_uppercase()))
        }
    }

    /// Consumes `IF NOT EXISTS` if present.
    pub(crate) fn if_not_exists(&mut self) -> PResult<bool> {
        if !self.at_word("if") {
            return Ok(false);
        }
        self.advance();
        self.expect_word("not")?;
        self.expect_word("exists")?;
        Ok(true)
    }

    /// Consumes `IF EXISTS` if present.
    pub(crate) fn if_exists(&mut self) -> PResult<bool> {
        if !self.at_word("if") {
            return Ok(false);
        }
        self.advance();
        self.expect_word("exists")?;
        Ok(true)
    }

    pub(crate) fn error_at(token: &Token, message: String) -> SyntaxError {
        SyntaxError {
            line: token.line,
            column: token.column,
            message,
        }
    }

    pub(crate) fn mismatch(&self, expecting: &str) -> SyntaxError {
        let token = self.peek();
        Self::error_at(
            token,
            format!("mismatched input '{}' expecting {expecting}", token.text),
        )
    }

    pub(crate) fn no_viable(&self) -> SyntaxError {
        let token = self.peek();
        Self::error_at(
            token,
            format!("no viable alternative at input '{}'", token.text),
        )
    }

    /// True if the token `n` ahead can be an identifier.
    pub(crate) fn ident_at(&self, n: usize) -> bool {
        let token = self.peek_nth(n);
        match &token.kind {
            TokenKind::QuotedName(_) => true,
            TokenKind::Word => !is_reserved(&token.text),
            _ => false,
        }
    }

    /// An identifier: an unreserved word (lowercased) or a quoted name (verbatim).
    pub(crate) fn ident(&mut self) -> PResult<String> {
        if !self.ident_at(0) {
            return Err(self.mismatch("identifier"));
        }
        Ok(match self.advance() {
            Token {
                kind: TokenKind::QuotedName(name),
                ..
            } => name,
            token => token.text.to_ascii_lowercase(),
        })
    }

    /// `name` or `keyspace.name`.
    pub(crate) fn qualified_name(&mut self) -> PResult<QualifiedName> {
        let first = self.ident()?;
        if self.eat(&TokenKind::Dot) {
            let name = self.ident()?;
            return Ok(QualifiedName {
                keyspace: Some(first),
                name,
            });
        }
        Ok(QualifiedName {
            keyspace: None,
            name: first,
        })
    }

    /// `ident (, ident)*` inside parentheses; the opening `(` is consumed here.
    pub(crate) fn ident_list(&mut self) -> PResult<Vec<String>> {
        self.expect(&TokenKind::LParen, "'('")?;
        let mut names = vec![self.ident()?];
        while self.eat(&TokenKind::Comma) {
            names.push(self.ident()?);
        }
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(names)
    }

    fn next_marker(&mut self, name: Option<String>) -> BindMarker {
        let index = self.bind_names.len();
        self.bind_names.push(name.clone());
        BindMarker { index, name }
    }

    /// `?` or `:name` if the cursor is at one.
    pub(crate) fn bind_marker(&mut self) -> PResult<Option<BindMarker>> {
        if self.eat(&TokenKind::QMark) {
            return Ok(Some(self.next_marker(None)));
        }
        if self.eat(&TokenKind::Colon) {
            let name = self.ident()?;
            return Ok(Some(self.next_marker(Some(name))));
        }
        Ok(None)
    }

    // ---- types ----

    /// Runs `rule` one nesting level deeper, failing past `MAX_DEPTH`.
    fn nested<T>(&mut self, rule: fn(&mut Parser) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_DEPTH {
            let token = self.peek();
            return Err(Self::error_at(
                token,
                format!("input nested too deeply at '{}'", token.text),
            ));
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        result
    }

    pub(crate) fn cql_type(&mut self) -> PResult<CqlType> {
        self.nested(Self::cql_type_inner)
    }

    fn cql_type_inner(&mut self) -> PResult<CqlType> {
        if let TokenKind::Str(class) = &self.peek().kind {
            let class = class.clone();
            self.advance();
            return Ok(CqlType::Custom(class));
        }
        if self.peek().kind == TokenKind::Word && self.peek_nth(1).kind == TokenKind::Lt {
            return self.parametrized_type();
        }
        if self.peek().kind == TokenKind::Word && self.peek_nth(1).kind != TokenKind::Dot {
            if let Some(native) = NativeType::from_name(&self.peek().text) {
                self.advance();
                return Ok(CqlType::Native(native));
            }
        }
        if !self.ident_at(0) {
            return Err(self.no_viable());
        }
        Ok(CqlType::UserDefined(self.qualified_name()?))
    }

    fn parametrized_type(&mut self) -> PResult<CqlType> {
        let name = self.advance().text.to_ascii_lowercase();
        self.expect(&TokenKind::Lt, "'<'")?;
        let ty = match name.as_str() {
            "frozen" => CqlType::Frozen(Box::new(self.cql_type()?)),
            "list" => CqlType::List(Box::new(self.cql_type()?)),
            "set" => CqlType::Set(Box::new(self.cql_type()?)),
            "map" => {
                let key = self.cql_type()?;
                self.expect(&TokenKind::Comma, "','")?;
                CqlType::Map(Box::new(key), Box::new(self.cql_type()?))
            }
            "tuple" => {
                let mut items = vec![self.cql_type()?];
                while self.eat(&TokenKind::Comma) {
                    items.push(self.cql_type()?);
                }
                CqlType::Tuple(items)
            }
            _ => {
                let token = &self.tokens[self.pos - 2];
                return Err(Self::error_at(
                    token,
                    format!("no viable alternative at input '{}'", token.text),
                ));
            }
        };
        self.expect(&TokenKind::Gt, "'>'")?;
        Ok(ty)
    }

    // ---- terms ----

    pub(crate) fn term(&mut self) -> PResult<Term> {
        self.nested(Self::term_inner)
    }

    fn term_inner(&mut self) -> PResult<Term> {
        if let Some(marker) = self.bind_marker()? {
            return Ok(Term::Bind(marker));
        }
        if let Some(constant) = self.constant()? {
            return Ok(Term::Constant(constant));
        }
        match self.peek().kind {
            TokenKind::LBracket => self.list_literal(),
            TokenKind::LBrace => self.brace_literal(),
            TokenKind::LParen => self.paren_term(),
            TokenKind::Word if self.at_word("null") => {
                self.advance();
                Ok(Term::Null)
            }
            TokenKind::Word | TokenKind::QuotedName(_) if self.function_call_ahead() => {
                let name = self.function_name()?;
                let args = self.term_args()?;
                Ok(Term::FunctionCall { name, args })
            }
            _ => Err(self.no_viable()),
        }
    }

    /// A literal constant (with an optional leading `-` on numbers), if one starts here.
    pub(crate) fn constant(&mut self) -> PResult<Option<Constant>> {
        let negative = self.at(&TokenKind::Minus);
        let offset = usize::from(negative);
        let token = self.peek_nth(offset);
        let kind = match &token.kind {
            TokenKind::Str(s) if !negative => {
                let text = s.clone();
                self.advance();
                return Ok(Some(Constant {
                    kind: ConstantKind::String,
                    text,
                }));
            }
            TokenKind::Integer => ConstantKind::Integer,
            TokenKind::Float => ConstantKind::Float,
            TokenKind::Duration => ConstantKind::Duration,
            TokenKind::Uuid if !negative => ConstantKind::Uuid,
            TokenKind::Hex if !negative => ConstantKind::Hex,
            TokenKind::Word if self.word_at(offset, "nan") || self.word_at(offset, "infinity") => {
                ConstantKind::Float
            }
            TokenKind::Word
                if !negative && (self.word_at(0, "true") || self.word_at(0, "false")) =>
            {
                ConstantKind::Boolean
            }
            _ if negative => {
                self.advance();
                return Err(self.mismatch("a number"));
            }
            _ => return Ok(None),
        };
        if negative {
            self.advance();
        }
        let token = self.advance();
        let mut text = if kind == ConstantKind::Boolean {
            token.text.to_ascii_lowercase()
        } else {
            token.text
        };
        if negative {
            text.insert(0, '-');
        }
        Ok(Some(Constant { kind, text }))
    }

    /// True if a (possibly qualified) function name followed by `(` starts here.
    pub(crate) fn function_call_ahead(&self) -> bool {
        let name_at = |n: usize| self.ident_at(n) || self.word_at(n, "token");
        if !name_at(0) {
            return false;
        }
        match self.peek_nth(1).kind {
            TokenKind::LParen => true,
            TokenKind::Dot => name_at(2) && self.peek_nth(3).kind == TokenKind::LParen,
            _ => false,
        }
    }

    /// A function name; besides identifiers, the reserved `token` is allowed.
    pub(crate) fn function_name(&mut self) -> PResult<QualifiedName> {
        let mut first = self.function_name_part()?;
        if self.eat(&TokenKind::Dot) {
            let name = self.function_name_part()?;
            return Ok(QualifiedName {
                keyspace: Some(std::mem::take(&mut first)),
                name,
            });
        }
        Ok(QualifiedName {
            keyspace: None,
            name: first,
        })
    }

    fn function_name_part(&mut self) -> PResult<String> {
        if self.at_word("token") {
            self.advance();
            return Ok("token".to_string());
        }
        self.ident()
    }

    fn term_args(&mut self) -> PResult<Vec<Term>> {
        self.expect(&TokenKind::LParen, "'('")?;
        let mut args = Vec::new();
        if !self.eat(&TokenKind::RParen) {
            args.push(self.term()?);
            while self.eat(&TokenKind::Comma) {
                args.push(self.term()?);
            }
            self.expect(&TokenKind::RParen, "')'")?;
        }
        Ok(args)
    }

    fn list_literal(&mut self) -> PResult<Term> {
        self.expect(&TokenKind::LBracket, "'['")?;
        let mut items = Vec::new();
        if !self.eat(&TokenKind::RBracket) {
            items.push(self.term()?);
            while self.eat(&TokenKind::Comma) {
                items.push(self.term()?);
            }
            self.expect(&TokenKind::RBracket, "']'")?;
        }
        Ok(Term::List(items))
    }

    fn brace_literal(&mut self) -> PResult<Term> {
        self.expect(&TokenKind::LBrace, "'{'")?;
        if self.eat(&TokenKind::RBrace) {
            return Ok(Term::EmptyBraces);
        }
        if self.ident_at(0) && self.peek_nth(1).kind == TokenKind::Colon {
            return self.udt_literal();
        }
        let first = self.term()?;
        if !self.eat(&TokenKind::Colon) {
            let mut items = vec![first];
            while self.eat(&TokenKind::Comma) {
                items.push(self.term()?);
            }
            self.expect(&TokenKind::RBrace, "'}'")?;
            return Ok(Term::Set(items));
        }
        let mut entries = vec![(first, self.term()?)];
        while self.eat(&TokenKind::Comma) {
            let key = self.term()?;
            self.expect(&TokenKind::Colon, "':'")?;
            entries.push((key, self.term()?));
        }
        self.expect(&TokenKind::RBrace, "'}'")?;
        Ok(Term::Map(entries))
    }

    fn udt_literal(&mut self) -> PResult<Term> {
        let mut fields = Vec::new();
        loop {
            let name = self.ident()?;
            self.expect(&TokenKind::Colon, "':'")?;
            fields.push((name, self.term()?));
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RBrace, "'}'")?;
        Ok(Term::Udt(fields))
    }

    /// `(type) term` or a tuple literal.
    fn paren_term(&mut self) -> PResult<Term> {
        self.expect(&TokenKind::LParen, "'('")?;
        if self.type_hint_ahead() {
            let ty = self.cql_type()?;
            self.expect(&TokenKind::RParen, "')'")?;
            let term = self.term()?;
            return Ok(Term::TypeHint {
                ty,
                term: Box::new(term),
            });
        }
        let mut items = vec![self.term()?];
        while self.eat(&TokenKind::Comma) {
            items.push(self.term()?);
        }
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(Term::Tuple(items))
    }

    /// After `(`: true if a type (not a term) follows. Terms never start with a bare name
    /// unless it is a function call.
    fn type_hint_ahead(&self) -> bool {
        if !self.ident_at(0) {
            return false;
        }
        match self.peek_nth(1).kind {
            TokenKind::RParen | TokenKind::Lt => true,
            TokenKind::Dot => self.peek_nth(3).kind == TokenKind::RParen,
            _ => false,
        }
    }

    // ---- selectors ----

    pub(crate) fn selection(&mut self) -> PResult<Selection> {
        if self.eat(&TokenKind::Star) {
            return Ok(Selection::Wildcard);
        }
        let mut selectors = vec![self.selector()?];
        while self.eat(&TokenKind::Comma) {
            selectors.push(self.selector()?);
        }
        Ok(Selection::Selectors(selectors))
    }

    fn selector(&mut self) -> PResult<Selector> {
        let selectable = self.selectable()?;
        let alias = if self.eat_word("as") {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Selector { selectable, alias })
    }

    fn selectable(&mut self) -> PResult<Selectable> {
        self.nested(Self::selectable_inner)
    }

    fn selectable_inner(&mut self) -> PResult<Selectable> {
        let mut base = self.selectable_base()?;
        loop {
            if self.eat(&TokenKind::Dot) {
                let field = self.ident()?;
                base = Selectable::Field {
                    base: Box::new(base),
                    field,
                };
            } else if self.eat(&TokenKind::LBracket) {
                let key = self.term()?;
                self.expect(&TokenKind::RBracket, "']'")?;
                base = Selectable::Element {
                    base: Box::new(base),
                    key,
                };
            } else {
                return Ok(base);
            }
        }
    }

    fn selectable_base(&mut self) -> PResult<Selectable> {
        if self.peek_nth(1).kind == TokenKind::LParen && self.peek().kind == TokenKind::Word {
            if let Some(special) = self.special_selector()? {
                return Ok(special);
            }
        }
        if self.function_call_ahead() {
            let name = self.function_name()?;
            self.expect(&TokenKind::LParen, "'('")?;
            let mut args = Vec::new();
            if !self.eat(&TokenKind::RParen) {
                args.push(self.selectable()?);
                while self.eat(&TokenKind::Comma) {
                    args.push(self.selectable()?);
                }
                self.expect(&TokenKind::RParen, "')'")?;
            }
            return Ok(Selectable::Function { name, args });
        }
        if self.ident_at(0) {
            return Ok(Selectable::Column(self.ident()?));
        }
        Ok(Selectable::Term(self.term()?))
    }

    /// `count(*)`, `count(1)`, `writetime(c)`, `ttl(c)`, `cast(x AS t)`.
    fn special_selector(&mut self) -> PResult<Option<Selectable>> {
        let word = self.peek().text.to_ascii_lowercase();
        let result = match word.as_str() {
            "count"
                if self.peek_nth(2).kind == TokenKind::Star
                    || (self.peek_nth(2).kind == TokenKind::Integer
                        && self.peek_nth(2).text == "1"
                        && self.peek_nth(3).kind == TokenKind::RParen) =>
            {
                self.advance();
                self.advance();
                self.advance();
                Selectable::CountRows
            }
            "writetime" | "ttl" => {
                self.advance();
                self.advance();
                let column = self.ident()?;
                if word == "ttl" {
                    Selectable::Ttl(column)
                } else {
                    Selectable::WriteTime(column)
                }
            }
            "cast" => {
                self.advance();
                self.advance();
                let arg = Box::new(self.selectable()?);
                self.expect_word("as")?;
                let ty = self.cql_type()?;
                Selectable::Cast { arg, ty }
            }
            _ => return Ok(None),
        };
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(Some(result))
    }

    // ---- relations ----

    /// `relation (AND relation)*`.
    pub(crate) fn where_clause(&mut self) -> PResult<Vec<Relation>> {
        let mut relations = vec![self.relation()?];
        while self.eat_word("and") {
            relations.push(self.relation()?);
        }
        Ok(relations)
    }

    fn relation(&mut self) -> PResult<Relation> {
        if self.at_word("token") && self.peek_nth(1).kind == TokenKind::LParen {
            self.advance();
            let columns = self.ident_list()?;
            let op = self.comparison()?;
            let value = self.term()?;
            return Ok(Relation::Token { columns, op, value });
        }
        if self.at(&TokenKind::LParen) {
            return self.multi_column_relation();
        }
        let column = self.ident()?;
        if self.eat(&TokenKind::LBracket) {
            let key = self.term()?;
            self.expect(&TokenKind::RBracket, "']'")?;
            let op = self.comparison()?;
            let value = self.term()?;
            return Ok(Relation::Element {
                column,
                key,
                op,
                value,
            });
        }
        if self.eat_word("is") {
            self.expect_word("not")?;
            self.expect_word("null")?;
            return Ok(Relation::IsNotNull { column });
        }
        if self.eat_word("in") {
            let values = self.in_values()?;
            return Ok(Relation::In { column, values });
        }
        let op = self.operator()?;
        let value = self.term()?;
        Ok(Relation::Simple { column, op, value })
    }

    fn multi_column_relation(&mut self) -> PResult<Relation> {
        let columns = self.ident_list()?;
        if self.eat_word("in") {
            let values = self.in_values()?;
            return Ok(Relation::MultiColumnIn { columns, values });
        }
        let op = self.comparison()?;
        let value = self.term()?;
        Ok(Relation::MultiColumn { columns, op, value })
    }

    /// After `IN`: `?`, `:name`, or `(term, ...)` (possibly empty).
    pub(crate) fn in_values(&mut self) -> PResult<InValues> {
        if let Some(marker) = self.bind_marker()? {
            return Ok(InValues::Marker(marker));
        }
        self.expect(&TokenKind::LParen, "'('")?;
        let mut items = Vec::new();
        if !self.eat(&TokenKind::RParen) {
            items.push(self.term()?);
            while self.eat(&TokenKind::Comma) {
                items.push(self.term()?);
            }
            self.expect(&TokenKind::RParen, "')'")?;
        }
        Ok(InValues::List(items))
    }

    /// `= != < <= > >=`.
    pub(crate) fn comparison(&mut self) -> PResult<Operator> {
        let op = match self.peek().kind {
            TokenKind::Eq => Operator::Eq,
            TokenKind::Neq => Operator::Neq,
            TokenKind::Lt => Operator::Lt,
            TokenKind::Lte => Operator::Lte,
            TokenKind::Gt => Operator::Gt,
            TokenKind::Gte => Operator::Gte,
            _ => return Err(self.no_viable()),
        };
        self.advance();
        Ok(op)
    }

    /// A comparison, `CONTAINS [KEY]` or `LIKE`.
    pub(crate) fn operator(&mut self) -> PResult<Operator> {
        if self.eat_word("contains") {
            if self.eat_word("key") {
                return Ok(Operator::ContainsKey);
            }
            return Ok(Operator::Contains);
        }
        if self.eat_word("like") {
            return Ok(Operator::Like);
        }
        self.comparison()
    }

    /// `USING TTL x AND TIMESTAMP y AND TIMEOUT z`, if present.
    pub(crate) fn using_clause(&mut self) -> PResult<Using> {
        let mut using = Using::default();
        if !self.eat_word("using") {
            return Ok(using);
        }
        loop {
            let slot = if self.eat_word("ttl") {
                &mut using.ttl
            } else if self.eat_word("timestamp") {
                &mut using.timestamp
            } else if self.eat_word("timeout") {
                &mut using.timeout
            } else {
                return Err(self.mismatch("TTL, TIMESTAMP or TIMEOUT"));
            };
            *slot = Some(self.term()?);
            if !self.eat_word("and") {
                return Ok(using);
            }
        }
    }
}
