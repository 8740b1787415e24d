//! Data statements: SELECT, INSERT, UPDATE, DELETE and BATCH.

use super::ast::*;
use super::lexer::TokenKind;
use super::parser::{PResult, Parser};

impl Parser {
    /// After `SELECT`.
    pub(crate) fn select_statement(&mut self) -> PResult<SelectStatement> {
        let json = self.select_modifier("json");
        let distinct = self.select_modifier("distinct");
        let selection = self.selection()?;
        self.expect_word("from")?;
        let table = self.qualified_name()?;
        let where_clause = if self.eat_word("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        let group_by = self.group_by()?;
        let order_by = self.order_by()?;
        let per_partition_limit = if self.eat_word("per") {
            self.expect_word("partition")?;
            self.expect_word("limit")?;
            Some(self.term()?)
        } else {
            None
        };
        let limit = if self.eat_word("limit") {
            Some(self.term()?)
        } else {
            None
        };
        let allow_filtering = self.eat_word("allow");
        if allow_filtering {
            self.expect_word("filtering")?;
        }
        let bypass_cache = self.eat_word("bypass");
        if bypass_cache {
            self.expect_word("cache")?;
        }
        let timeout = self.using_clause()?;
        if timeout.ttl.is_some() || timeout.timestamp.is_some() {
            return Err(self.mismatch("TIMEOUT"));
        }
        Ok(SelectStatement {
            json,
            distinct,
            selection,
            table,
            where_clause,
            group_by,
            order_by,
            per_partition_limit,
            limit,
            allow_filtering,
            bypass_cache,
            timeout: timeout.timeout,
        })
    }

    /// `JSON` / `DISTINCT` after SELECT, unless the word is itself a selected column.
    fn select_modifier(&mut self, word: &str) -> bool {
        if !self.at_word(word) {
            return false;
        }
        let next = self.peek_nth(1);
        let is_column = matches!(
            next.kind,
            TokenKind::Comma | TokenKind::Dot | TokenKind::LParen | TokenKind::Eof
        ) || self.word_at(1, "from")
            || (self.word_at(1, "as") && !self.word_at(2, "from"));
        if !is_column {
            self.advance();
        }
        !is_column
    }

    fn group_by(&mut self) -> PResult<Vec<String>> {
        let mut columns = Vec::new();
        if self.eat_word("group") {
            self.expect_word("by")?;
            columns.push(self.ident()?);
            while self.eat(&TokenKind::Comma) {
                columns.push(self.ident()?);
            }
        }
        Ok(columns)
    }

    fn order_by(&mut self) -> PResult<Vec<(String, Order)>> {
        let mut orderings = Vec::new();
        if self.eat_word("order") {
            self.expect_word("by")?;
            loop {
                let column = self.ident()?;
                orderings.push((column, self.order()));
                if !self.eat(&TokenKind::Comma) {
                    break;
                }
            }
        }
        Ok(orderings)
    }

    /// Optional `ASC` / `DESC`, defaulting to ascending.
    pub(crate) fn order(&mut self) -> Order {
        if self.eat_word("desc") {
            Order::Desc
        } else {
            self.eat_word("asc");
            Order::Asc
        }
    }

    /// After `INSERT`.
    pub(crate) fn insert_statement(&mut self) -> PResult<InsertStatement> {
        self.expect_word("into")?;
        let table = self.qualified_name()?;
        let values = if self.eat_word("json") {
            let json = self.term()?;
            let mut default_unset = false;
            if self.eat_word("default") {
                default_unset = self.eat_word("unset");
                if !default_unset {
                    self.expect_word("null")?;
                }
            }
            InsertValues::Json {
                json,
                default_unset,
            }
        } else {
            self.insert_columns()?
        };
        let mut if_not_exists = self.if_not_exists()?;
        let using = self.using_clause()?;
        if !if_not_exists {
            if_not_exists = self.if_not_exists()?;
        }
        Ok(InsertStatement {
            table,
            values,
            if_not_exists,
            using,
        })
    }

    fn insert_columns(&mut self) -> PResult<InsertValues> {
        let columns = self.ident_list()?;
        self.expect_word("values")?;
        self.expect(&TokenKind::LParen, "'('")?;
        let mut values = vec![self.term()?];
        while self.eat(&TokenKind::Comma) {
            values.push(self.term()?);
        }
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(InsertValues::Columns { columns, values })
    }

    /// After `UPDATE`.
    pub(crate) fn update_statement(&mut self) -> PResult<UpdateStatement> {
        let table = self.qualified_name()?;
        let using = self.using_clause()?;
        self.expect_word("set")?;
        let mut assignments = vec![self.assignment()?];
        while self.eat(&TokenKind::Comma) {
            assignments.push(self.assignment()?);
        }
        self.expect_word("where")?;
        let where_clause = self.where_clause()?;
        let if_clause = self.if_clause()?;
        Ok(UpdateStatement {
            table,
            using,
            assignments,
            where_clause,
            if_clause,
        })
    }

    fn assignment(&mut self) -> PResult<Assignment> {
        let column = self.ident()?;
        if self.eat(&TokenKind::PlusEq) {
            let value = self.term()?;
            return Ok(Assignment::Add { column, value });
        }
        if self.eat(&TokenKind::MinusEq) {
            let value = self.term()?;
            return Ok(Assignment::Subtract { column, value });
        }
        if self.eat(&TokenKind::LBracket) {
            let key = self.term()?;
            self.expect(&TokenKind::RBracket, "']'")?;
            self.expect(&TokenKind::Eq, "'='")?;
            let value = self.term()?;
            return Ok(Assignment::SetElement { column, key, value });
        }
        if self.eat(&TokenKind::Dot) {
            let field = self.ident()?;
            self.expect(&TokenKind::Eq, "'='")?;
            let value = self.term()?;
            return Ok(Assignment::SetField {
                column,
                field,
                value,
            });
        }
        self.expect(&TokenKind::Eq, "'='")?;
        self.assignment_value(column)
    }

    /// After `c =`: `term`, `c + term`, `c - term` or `term + c`.
    fn assignment_value(&mut self, column: String) -> PResult<Assignment> {
        let operator_follows = matches!(self.peek_nth(1).kind, TokenKind::Plus | TokenKind::Minus);
        if self.ident_at(0) && operator_follows {
            let same = self.peek().clone();
            let other = self.ident()?;
            if other != column {
                return Err(Parser::error_at(
                    &same,
                    format!(
                        "Only expressions of the form X = X +<value> are supported (X is {column})"
                    ),
                ));
            }
            let add = self.advance().kind == TokenKind::Plus;
            let value = self.term()?;
            return Ok(if add {
                Assignment::Add { column, value }
            } else {
                Assignment::Subtract { column, value }
            });
        }
        let value = self.term()?;
        if self.eat(&TokenKind::Plus) {
            let at = self.peek().clone();
            if self.ident()? != column {
                return Err(Parser::error_at(
                    &at,
                    format!("Only expressions of the form X = <value> + X are supported (X is {column})"),
                ));
            }
            return Ok(Assignment::Prepend { column, value });
        }
        Ok(Assignment::Set { column, value })
    }

    /// `IF EXISTS` or `IF condition AND ...`, if present.
    pub(crate) fn if_clause(&mut self) -> PResult<Option<IfClause>> {
        if !self.eat_word("if") {
            return Ok(None);
        }
        if self.at_word("exists") && !self.condition_follows_exists() {
            self.advance();
            return Ok(Some(IfClause::Exists));
        }
        let mut conditions = vec![self.condition()?];
        while self.eat_word("and") {
            conditions.push(self.condition()?);
        }
        Ok(Some(IfClause::Conditions(conditions)))
    }

    /// `exists` is unreserved: `IF exists = 1` tests a column named exists.
    fn condition_follows_exists(&self) -> bool {
        matches!(
            self.peek_nth(1).kind,
            TokenKind::Eq
                | TokenKind::Neq
                | TokenKind::Lt
                | TokenKind::Lte
                | TokenKind::Gt
                | TokenKind::Gte
                | TokenKind::LBracket
                | TokenKind::Dot
        ) || self.word_at(1, "in")
            || self.word_at(1, "contains")
            || self.word_at(1, "like")
    }

    fn condition(&mut self) -> PResult<Condition> {
        let column = self.ident()?;
        let target = if self.eat(&TokenKind::LBracket) {
            let key = self.term()?;
            self.expect(&TokenKind::RBracket, "']'")?;
            ConditionTarget::Element { column, key }
        } else if self.eat(&TokenKind::Dot) {
            let field = self.ident()?;
            ConditionTarget::Field { column, field }
        } else {
            ConditionTarget::Column(column)
        };
        let predicate = if self.eat_word("in") {
            ConditionPredicate::In(self.in_values()?)
        } else {
            let op = self.operator()?;
            ConditionPredicate::Compare(op, self.term()?)
        };
        Ok(Condition { target, predicate })
    }

    /// After `DELETE`.
    pub(crate) fn delete_statement(&mut self) -> PResult<DeleteStatement> {
        let mut targets = Vec::new();
        if !self.at_word("from") {
            targets.push(self.delete_target()?);
            while self.eat(&TokenKind::Comma) {
                targets.push(self.delete_target()?);
            }
        }
        self.expect_word("from")?;
        let table = self.qualified_name()?;
        let using = self.using_clause()?;
        self.expect_word("where")?;
        let where_clause = self.where_clause()?;
        let if_clause = self.if_clause()?;
        Ok(DeleteStatement {
            targets,
            table,
            using,
            where_clause,
            if_clause,
        })
    }

    fn delete_target(&mut self) -> PResult<DeleteTarget> {
        let column = self.ident()?;
        if self.eat(&TokenKind::LBracket) {
            let key = self.term()?;
            self.expect(&TokenKind::RBracket, "']'")?;
            return Ok(DeleteTarget::Element { column, key });
        }
        if self.eat(&TokenKind::Dot) {
            let field = self.ident()?;
            return Ok(DeleteTarget::Field { column, field });
        }
        Ok(DeleteTarget::Column(column))
    }

    /// After `BEGIN`.
    pub(crate) fn batch_statement(&mut self) -> PResult<BatchStatement> {
        let kind = if self.eat_word("unlogged") {
            BatchKind::Unlogged
        } else if self.eat_word("counter") {
            BatchKind::Counter
        } else {
            BatchKind::Logged
        };
        self.expect_word("batch")?;
        let using = self.using_clause()?;
        let mut statements = Vec::new();
        loop {
            while self.eat(&TokenKind::Semicolon) {}
            if self.eat_word("apply") {
                self.expect_word("batch")?;
                return Ok(BatchStatement {
                    kind,
                    using,
                    statements,
                });
            }
            statements.push(self.batch_child()?);
        }
    }

    fn batch_child(&mut self) -> PResult<BatchChild> {
        if self.eat_word("insert") {
            return Ok(BatchChild::Insert(self.insert_statement()?));
        }
        if self.eat_word("update") {
            return Ok(BatchChild::Update(self.update_statement()?));
        }
        if self.eat_word("delete") {
            return Ok(BatchChild::Delete(self.delete_statement()?));
        }
        Err(self.mismatch("INSERT, UPDATE, DELETE or APPLY BATCH"))
    }
}
