//! CQL 3 lexer, parser and AST.
//!
//! The parser is hand-written recursive descent over a hand-written lexer (`lexer.rs`). It
//! checks syntax only; names are resolved and types checked by the statement executor. It
//! accepts the statements and literal forms of Cassandra 4 / ScyllaDB 5 CQL, including the
//! ScyllaDB extensions `BYPASS CACHE` and `USING TIMEOUT`.
//!
//! Why hand-written: CQL reserves few words and lets most keywords name columns (`key`, `ttl`,
//! `type`, `text`, ...). A recursive-descent parser that matches keywords by spelling where
//! the grammar expects them handles that without a generated unreserved-keyword table, and
//! gives positioned errors in the `line L:C message` form drivers and cqlsh users know.
//!
//! ```
//! use cql::parser::{parse_statement, ast::Statement};
//! let parsed = parse_statement("SELECT key, value FROM ks.t WHERE key = ? LIMIT :n").unwrap();
//! assert_eq!(parsed.bind_count, 2);
//! assert!(matches!(parsed.statement, Statement::Select(_)));
//! ```

pub mod ast;
mod ddl;
mod display;
mod dml;
pub mod lexer;
#[allow(clippy::module_inception)]
mod parser;
#[cfg(test)]
mod tests;

use ast::Statement;
use lexer::TokenKind;
use parser::{PResult, Parser};

/// A syntax error at a source position (line 1-based, column 0-based in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column} {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A statement with the bind markers it contains.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    /// Number of bind markers; they are numbered `0..bind_count` in textual order.
    pub bind_count: usize,
    /// The name of each marker by index (`Some` for `:name`, `None` for `?`).
    pub bind_names: Vec<Option<String>>,
}

/// Parses exactly one statement with an optional trailing `;`.
pub fn parse_statement(text: &str) -> Result<ParsedStatement, SyntaxError> {
    let mut parser = Parser::new(lexer::tokenize(text)?);
    let parsed = parse_one(&mut parser)?;
    while parser.eat(&TokenKind::Semicolon) {}
    if !parser.at_eof() {
        return Err(parser.mismatch("<EOF>"));
    }
    Ok(parsed)
}

/// Parses a `;`-separated script (empty statements are skipped). Each statement numbers its
/// bind markers from 0.
pub fn parse_statements(text: &str) -> Result<Vec<ParsedStatement>, SyntaxError> {
    let mut parser = Parser::new(lexer::tokenize(text)?);
    let mut statements = Vec::new();
    loop {
        while parser.eat(&TokenKind::Semicolon) {}
        if parser.at_eof() {
            return Ok(statements);
        }
        statements.push(parse_one(&mut parser)?);
        if !parser.at_eof() && !parser.at(&TokenKind::Semicolon) {
            return Err(parser.mismatch("';'"));
        }
    }
}

fn parse_one(parser: &mut Parser) -> PResult<ParsedStatement> {
    parser.bind_names.clear();
    let statement = statement(parser)?;
    let bind_names = std::mem::take(&mut parser.bind_names);
    Ok(ParsedStatement {
        statement,
        bind_count: bind_names.len(),
        bind_names,
    })
}

fn statement(parser: &mut Parser) -> PResult<Statement> {
    if parser.peek().kind != TokenKind::Word {
        return Err(parser.no_viable());
    }
    let verb = parser.peek().text.to_ascii_lowercase();
    if matches!(verb.as_str(), "grant" | "revoke" | "list") {
        parser.advance();
        return Ok(parser.auth_statement(&verb.to_ascii_uppercase()));
    }
    let known = [
        "select", "insert", "update", "delete", "begin", "use", "create", "alter", "drop",
        "truncate",
    ];
    if !known.contains(&verb.as_str()) {
        return Err(parser.no_viable());
    }
    parser.advance();
    match verb.as_str() {
        "select" => Ok(Statement::Select(parser.select_statement()?)),
        "insert" => Ok(Statement::Insert(parser.insert_statement()?)),
        "update" => Ok(Statement::Update(parser.update_statement()?)),
        "delete" => Ok(Statement::Delete(parser.delete_statement()?)),
        "begin" => Ok(Statement::Batch(parser.batch_statement()?)),
        "use" => Ok(Statement::Use(parser.ident()?)),
        "create" => parser.create_statement(),
        "alter" => parser.alter_statement(),
        "drop" => parser.drop_statement(),
        _ => parser.truncate_statement(),
    }
}
