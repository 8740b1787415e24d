//! CQL 3 lexer, parser and AST.
