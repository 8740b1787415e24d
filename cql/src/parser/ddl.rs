//! Schema statements: keyspaces, tables, types, indexes, materialized views, plus USE,
//! TRUNCATE and the minimally parsed auth statements.

use super::ast::*;
use super::lexer::TokenKind;
use super::parser::{PResult, Parser};

impl Parser {
    /// After `CREATE`.
    pub(crate) fn create_statement(&mut self) -> PResult<Statement> {
        if self.eat_word("keyspace") || self.eat_word("schema") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident()?;
            self.expect_word("with")?;
            let properties = self.properties()?;
            return Ok(Statement::CreateKeyspace(CreateKeyspace {
                if_not_exists,
                name,
                properties,
            }));
        }
        if self.eat_word("table") || self.eat_word("columnfamily") {
            return Ok(Statement::CreateTable(self.create_table()?));
        }
        if self.eat_word("type") {
            return Ok(Statement::CreateType(self.create_type()?));
        }
        if self.at_word("custom") || self.at_word("index") {
            return Ok(Statement::CreateIndex(self.create_index()?));
        }
        if self.eat_word("materialized") {
            self.expect_word("view")?;
            return Ok(Statement::CreateMaterializedView(self.create_view()?));
        }
        if self.at_word("role") || self.at_word("user") {
            return Ok(self.auth_statement("CREATE"));
        }
        Err(self.no_viable())
    }

    /// `name = value (AND name = value)*`.
    pub(crate) fn properties(&mut self) -> PResult<Properties> {
        let mut properties = vec![self.property()?];
        while self.eat_word("and") {
            properties.push(self.property()?);
        }
        Ok(properties)
    }

    fn property(&mut self) -> PResult<(String, PropertyValue)> {
        let name = self.ident()?;
        self.expect(&TokenKind::Eq, "'='")?;
        if let Some(constant) = self.constant()? {
            return Ok((name, PropertyValue::Constant(constant)));
        }
        if self.eat(&TokenKind::LBrace) {
            return Ok((name, PropertyValue::Map(self.property_map()?)));
        }
        if self.peek().kind == TokenKind::Word {
            let word = self.advance().text.to_ascii_lowercase();
            return Ok((name, PropertyValue::Name(word)));
        }
        Err(self.no_viable())
    }

    /// After `{`: `constant: constant, ...}`.
    fn property_map(&mut self) -> PResult<Vec<(Constant, Constant)>> {
        let mut entries = Vec::new();
        if self.eat(&TokenKind::RBrace) {
            return Ok(entries);
        }
        loop {
            let key = self.property_constant()?;
            self.expect(&TokenKind::Colon, "':'")?;
            if self.peek().kind == TokenKind::Word && self.peek().text.eq_ignore_ascii_case("null")
            {
                // An option cannot be unset this way: say which one.
                let message = format!("Invalid null value for property '{}'", key.text);
                return Err(Self::error_at(self.peek(), message));
            }
            entries.push((key, self.property_constant()?));
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RBrace, "'}'")?;
        Ok(entries)
    }

    fn property_constant(&mut self) -> PResult<Constant> {
        match self.constant()? {
            Some(constant) => Ok(constant),
            None => Err(self.mismatch("a constant")),
        }
    }

    fn create_table(&mut self) -> PResult<CreateTable> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect(&TokenKind::LParen, "'('")?;
        let mut columns = Vec::new();
        let mut primary_key = None;
        loop {
            if self.eat_word("primary") {
                self.expect_word("key")?;
                primary_key = Some(self.primary_key()?);
            } else {
                columns.push(self.column_definition(true)?);
            }
            // The grammar allows empty entries between commas (`a int, , b int`) and a
            // trailing comma; generated schemas rely on both.
            let mut saw_comma = false;
            while self.eat(&TokenKind::Comma) {
                saw_comma = true;
            }
            if !saw_comma || self.at(&TokenKind::RParen) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "')'")?;
        let options = self.table_options()?;
        Ok(CreateTable {
            if_not_exists,
            name,
            columns,
            primary_key,
            options,
        })
    }

    /// `name type [STATIC] [PRIMARY KEY]` (the key only when `allow_key`).
    fn column_definition(&mut self, allow_key: bool) -> PResult<ColumnDefinition> {
        let name = self.ident()?;
        let ty = self.cql_type()?;
        let is_static = self.eat_word("static");
        let primary_key = allow_key && self.eat_word("primary");
        if primary_key {
            self.expect_word("key")?;
        }
        Ok(ColumnDefinition {
            name,
            ty,
            is_static,
            primary_key,
        })
    }

    /// After `PRIMARY KEY`: `((a, b), c)` or `(a, c)`.
    fn primary_key(&mut self) -> PResult<PrimaryKey> {
        self.expect(&TokenKind::LParen, "'('")?;
        let partition_key = if self.at(&TokenKind::LParen) {
            self.ident_list()?
        } else {
            vec![self.ident()?]
        };
        let mut clustering_columns = Vec::new();
        while self.eat(&TokenKind::Comma) {
            clustering_columns.push(self.ident()?);
        }
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(PrimaryKey {
            partition_key,
            clustering_columns,
        })
    }

    /// `[WITH option AND ...]` of tables and views.
    fn table_options(&mut self) -> PResult<TableOptions> {
        let mut options = TableOptions::default();
        if self.eat_word("with") {
            self.table_option_list(&mut options)?;
        }
        Ok(options)
    }

    fn table_option_list(&mut self, options: &mut TableOptions) -> PResult<()> {
        loop {
            if self.at_word("clustering") && self.word_at(1, "order") {
                self.advance();
                self.advance();
                self.expect_word("by")?;
                self.expect(&TokenKind::LParen, "'('")?;
                loop {
                    let column = self.ident()?;
                    let order = self.order();
                    options.clustering_order.push((column, order));
                    if !self.eat(&TokenKind::Comma) {
                        break;
                    }
                }
                self.expect(&TokenKind::RParen, "')'")?;
            } else if self.at_word("compact") && self.word_at(1, "storage") {
                self.advance();
                self.advance();
                options.compact_storage = true;
            } else {
                options.properties.push(self.property()?);
            }
            if !self.eat_word("and") {
                return Ok(());
            }
        }
    }

    /// After `ALTER`.
    pub(crate) fn alter_statement(&mut self) -> PResult<Statement> {
        if self.eat_word("keyspace") || self.eat_word("schema") {
            let name = self.ident()?;
            self.expect_word("with")?;
            let properties = self.properties()?;
            return Ok(Statement::AlterKeyspace(AlterKeyspace { name, properties }));
        }
        if self.eat_word("table") || self.eat_word("columnfamily") {
            let name = self.qualified_name()?;
            let operation = self.alter_table_operation()?;
            return Ok(Statement::AlterTable(AlterTable { name, operation }));
        }
        if self.eat_word("type") {
            let name = self.qualified_name()?;
            let operation = self.alter_type_operation()?;
            return Ok(Statement::AlterType(AlterType { name, operation }));
        }
        if self.at_word("role") || self.at_word("user") {
            return Ok(self.auth_statement("ALTER"));
        }
        Err(self.no_viable())
    }

    fn alter_table_operation(&mut self) -> PResult<AlterTableOperation> {
        if self.eat_word("add") {
            let columns = if self.eat(&TokenKind::LParen) {
                let mut columns = vec![self.column_definition(false)?];
                while self.eat(&TokenKind::Comma) {
                    columns.push(self.column_definition(false)?);
                }
                self.expect(&TokenKind::RParen, "')'")?;
                columns
            } else {
                vec![self.column_definition(false)?]
            };
            return Ok(AlterTableOperation::Add(columns));
        }
        if self.eat_word("drop") {
            let columns = if self.at(&TokenKind::LParen) {
                self.ident_list()?
            } else {
                vec![self.ident()?]
            };
            let using = self.using_clause()?;
            if using.ttl.is_some() || using.timeout.is_some() {
                return Err(self.mismatch("TIMESTAMP"));
            }
            return Ok(AlterTableOperation::Drop {
                columns,
                timestamp: using.timestamp,
            });
        }
        if self.eat_word("rename") {
            return Ok(AlterTableOperation::Rename(self.renames()?));
        }
        if self.eat_word("alter") {
            let column = self.ident()?;
            self.expect_word("type")?;
            let ty = self.cql_type()?;
            return Ok(AlterTableOperation::AlterColumnType { column, ty });
        }
        if self.eat_word("with") {
            let mut options = TableOptions::default();
            self.table_option_list(&mut options)?;
            return Ok(AlterTableOperation::With(options));
        }
        Err(self.no_viable())
    }

    /// `a TO b (AND c TO d)*`.
    fn renames(&mut self) -> PResult<Vec<(String, String)>> {
        let mut renames = Vec::new();
        loop {
            let from = self.ident()?;
            self.expect_word("to")?;
            renames.push((from, self.ident()?));
            if !self.eat_word("and") {
                return Ok(renames);
            }
        }
    }

    fn alter_type_operation(&mut self) -> PResult<AlterTypeOperation> {
        if self.eat_word("add") {
            let field = self.ident()?;
            let ty = self.cql_type()?;
            return Ok(AlterTypeOperation::Add { field, ty });
        }
        if self.eat_word("rename") {
            return Ok(AlterTypeOperation::Rename(self.renames()?));
        }
        if self.eat_word("alter") {
            let field = self.ident()?;
            self.expect_word("type")?;
            let ty = self.cql_type()?;
            return Ok(AlterTypeOperation::AlterFieldType { field, ty });
        }
        Err(self.no_viable())
    }

    fn create_type(&mut self) -> PResult<CreateType> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect(&TokenKind::LParen, "'('")?;
        let mut fields = Vec::new();
        loop {
            let field = self.ident()?;
            fields.push((field, self.cql_type()?));
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(CreateType {
            if_not_exists,
            name,
            fields,
        })
    }

    fn create_index(&mut self) -> PResult<CreateIndex> {
        let custom = self.eat_word("custom");
        self.expect_word("index")?;
        let if_not_exists = self.if_not_exists()?;
        let name = if self.at_word("on") {
            None
        } else {
            Some(self.ident()?)
        };
        self.expect_word("on")?;
        let table = self.qualified_name()?;
        self.expect(&TokenKind::LParen, "'('")?;
        let mut targets = Vec::new();
        if !self.at(&TokenKind::RParen) {
            targets.push(self.index_target()?);
            while self.eat(&TokenKind::Comma) {
                targets.push(self.index_target()?);
            }
        }
        self.expect(&TokenKind::RParen, "')'")?;
        let using = if self.eat_word("using") {
            match self.constant()? {
                Some(c) if c.kind == ConstantKind::String => Some(c.text),
                _ => return Err(self.mismatch("a string literal")),
            }
        } else {
            None
        };
        let properties = if self.eat_word("with") {
            self.properties()?
        } else {
            Vec::new()
        };
        Ok(CreateIndex {
            custom,
            if_not_exists,
            name,
            table,
            targets,
            using,
            properties,
        })
    }

    fn index_target(&mut self) -> PResult<IndexTarget> {
        let kinds = [
            ("keys", IndexTargetKind::Keys),
            ("values", IndexTargetKind::Values),
            ("entries", IndexTargetKind::Entries),
            ("full", IndexTargetKind::Full),
        ];
        if self.peek_nth(1).kind == TokenKind::LParen {
            if let Some((_, kind)) = kinds.iter().find(|(word, _)| self.at_word(word)) {
                self.advance();
                self.advance();
                let column = self.ident()?;
                self.expect(&TokenKind::RParen, "')'")?;
                return Ok(IndexTarget {
                    column,
                    kind: *kind,
                });
            }
        }
        Ok(IndexTarget {
            column: self.ident()?,
            kind: IndexTargetKind::Simple,
        })
    }

    /// After `CREATE MATERIALIZED VIEW`.
    fn create_view(&mut self) -> PResult<CreateMaterializedView> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect_word("as")?;
        self.expect_word("select")?;
        let selection = self.selection()?;
        self.expect_word("from")?;
        let base_table = self.qualified_name()?;
        let where_clause = if self.eat_word("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        self.expect_word("primary")?;
        self.expect_word("key")?;
        let primary_key = self.primary_key()?;
        let options = self.table_options()?;
        Ok(CreateMaterializedView {
            if_not_exists,
            name,
            selection,
            base_table,
            where_clause,
            primary_key,
            options,
        })
    }

    /// After `DROP`.
    pub(crate) fn drop_statement(&mut self) -> PResult<Statement> {
        if self.eat_word("keyspace") || self.eat_word("schema") {
            let if_exists = self.if_exists()?;
            let name = QualifiedName {
                keyspace: None,
                name: self.ident()?,
            };
            return Ok(Statement::DropKeyspace(Drop { if_exists, name }));
        }
        let make: fn(Drop) -> Statement = if self.eat_word("table") || self.eat_word("columnfamily")
        {
            Statement::DropTable
        } else if self.eat_word("type") {
            Statement::DropType
        } else if self.eat_word("index") {
            Statement::DropIndex
        } else if self.eat_word("materialized") {
            self.expect_word("view")?;
            Statement::DropMaterializedView
        } else if self.at_word("role") || self.at_word("user") {
            return Ok(self.auth_statement("DROP"));
        } else {
            return Err(self.no_viable());
        };
        let if_exists = self.if_exists()?;
        let name = self.qualified_name()?;
        Ok(make(Drop { if_exists, name }))
    }

    /// After `TRUNCATE`.
    pub(crate) fn truncate_statement(&mut self) -> PResult<Statement> {
        if !self.eat_word("table") {
            self.eat_word("columnfamily");
        }
        Ok(Statement::Truncate(self.qualified_name()?))
    }

    /// Keeps the rest of an auth statement as raw words, up to `;` or the end.
    pub(crate) fn auth_statement(&mut self, verb: &str) -> Statement {
        let mut verb = verb.to_string();
        let has_object = matches!(verb.as_str(), "CREATE" | "ALTER" | "DROP" | "LIST");
        if has_object && self.peek().kind == TokenKind::Word {
            verb.push(' ');
            verb.push_str(&self.advance().text.to_ascii_uppercase());
        }
        let mut rest = Vec::new();
        while !self.at_eof() && !self.at(&TokenKind::Semicolon) {
            rest.push(self.advance().text);
        }
        Statement::Auth(AuthStatement { verb, rest })
    }
}
