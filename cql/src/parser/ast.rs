//! The CQL syntax tree.
//!
//! Nodes are plain data: the parser checks syntax only, and the statement executor checks
//! meaning against the schema (which column is a map, whether `{a: 1}` is a UDT value, ...).
//! Identifiers are stored in their canonical form: unquoted names folded to lowercase, quoted
//! names verbatim. `Display` renders nodes back to CQL, quoting names where needed.

use std::fmt;

/// A possibly keyspace-qualified name (`ks.t` or `t`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub keyspace: Option<String>,
    pub name: String,
}

/// The kind of a literal constant; the original text is kept in `Constant::text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstantKind {
    String,
    Integer,
    Float,
    Boolean,
    Uuid,
    Hex,
    Duration,
}

/// A literal. `text` is the unescaped content for strings, otherwise the source text with the
/// sign (`-12`, `-Infinity`, `0xcafe`, `1h30m`, `true`).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    pub kind: ConstantKind,
    pub text: String,
}

/// A `?` or `:name` marker; `index` counts markers in textual order from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMarker {
    pub index: usize,
    pub name: Option<String>,
}

/// A value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Constant(Constant),
    Null,
    Bind(BindMarker),
    List(Vec<Term>),
    /// `{a, b}`; never empty (see `EmptyBraces`).
    Set(Vec<Term>),
    /// `{k: v, ...}` whose keys are terms; never empty.
    Map(Vec<(Term, Term)>),
    /// `{field: value, ...}` whose keys are identifiers: a UDT value. The executor may also
    /// accept it for a map whose key type is text.
    Udt(Vec<(String, Term)>),
    /// `{}`: an empty map, set or UDT, decided by the receiving column's type.
    EmptyBraces,
    Tuple(Vec<Term>),
    FunctionCall {
        name: QualifiedName,
        args: Vec<Term>,
    },
    /// `(type) term`.
    TypeHint {
        ty: CqlType,
        term: Box<Term>,
    },
}

/// The native CQL types (`varchar` parses as `Text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    Smallint,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    Tinyint,
    Uuid,
    Varint,
}

/// A CQL type as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    Native(NativeType),
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    Frozen(Box<CqlType>),
    UserDefined(QualifiedName),
    /// A quoted custom type class name.
    Custom(String),
}

/// One `SELECT` output expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Selectable {
    Column(String),
    /// A literal or bind marker used as a selector.
    Term(Term),
    /// `count(*)` or `count(1)`.
    CountRows,
    WriteTime(String),
    Ttl(String),
    Function {
        name: QualifiedName,
        args: Vec<Selectable>,
    },
    Cast {
        arg: Box<Selectable>,
        ty: CqlType,
    },
    Field {
        base: Box<Selectable>,
        field: String,
    },
    /// `m['key']`: one element of a map or set.
    Element {
        base: Box<Selectable>,
        key: Term,
    },
}

/// A selector with its optional `AS` alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub selectable: Selectable,
    pub alias: Option<String>,
}

/// `*` or a list of selectors.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Wildcard,
    Selectors(Vec<Selector>),
}

/// A comparison operator in WHERE relations and IF conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Contains,
    ContainsKey,
    Like,
}

/// The right side of `IN`: a list of terms or one marker for the whole list.
#[derive(Debug, Clone, PartialEq)]
pub enum InValues {
    List(Vec<Term>),
    Marker(BindMarker),
}

/// One conjunct of a WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// `col op term`.
    Simple {
        column: String,
        op: Operator,
        value: Term,
    },
    /// `col IN (...)` / `col IN ?`.
    In { column: String, values: InValues },
    /// `col[key] op term`.
    Element {
        column: String,
        key: Term,
        op: Operator,
        value: Term,
    },
    /// `(c1, c2) op (t1, t2)` or `(c1, c2) op ?`.
    MultiColumn {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `(c1, c2) IN ((..), (..))` / `(c1, c2) IN ?`.
    MultiColumnIn {
        columns: Vec<String>,
        values: InValues,
    },
    /// `token(a, b) op term`.
    Token {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `col IS NOT NULL` (materialized views).
    IsNotNull { column: String },
}

/// `USING TTL x AND TIMESTAMP y AND TIMEOUT z`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Using {
    pub ttl: Option<Term>,
    pub timestamp: Option<Term>,
    pub timeout: Option<Term>,
}

/// What an IF condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionTarget {
    Column(String),
    Element { column: String, key: Term },
    Field { column: String, field: String },
}

/// How an IF condition tests it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionPredicate {
    Compare(Operator, Term),
    In(InValues),
}

/// One conjunct of an IF clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub target: ConditionTarget,
    pub predicate: ConditionPredicate,
}

/// The IF clause of UPDATE or DELETE.
#[derive(Debug, Clone, PartialEq)]
pub enum IfClause {
    Exists,
    Conditions(Vec<Condition>),
}

/// `ASC` or `DESC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectStatement {
    pub json: bool,
    pub distinct: bool,
    pub selection: Selection,
    pub table: QualifiedName,
    pub where_clause: Vec<Relation>,
    pub group_by: Vec<String>,
    pub order_by: Vec<(String, Order)>,
    pub per_partition_limit: Option<Term>,
    pub limit: Option<Term>,
    pub allow_filtering: bool,
    pub bypass_cache: bool,
    pub timeout: Option<Term>,
}

/// What INSERT writes.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertValues {
    Columns {
        columns: Vec<String>,
        values: Vec<Term>,
    },
    /// `JSON 'doc'`; `default_unset` is true for `DEFAULT UNSET` (the default is NULL).
    Json { json: Term, default_unset: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertStatement {
    pub table: QualifiedName,
    pub values: InsertValues,
    pub if_not_exists: bool,
    pub using: Using,
}

/// One SET assignment of UPDATE.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// `c = term`.
    Set { column: String, value: Term },
    /// `c[key] = term`.
    SetElement {
        column: String,
        key: Term,
        value: Term,
    },
    /// `c.field = term`.
    SetField {
        column: String,
        field: String,
        value: Term,
    },
    /// `c = c + term` or `c += term` (append, add, counter increment).
    Add { column: String, value: Term },
    /// `c = term + c` (list prepend).
    Prepend { column: String, value: Term },
    /// `c = c - term` or `c -= term` (remove, counter decrement).
    Subtract { column: String, value: Term },
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateStatement {
    pub table: QualifiedName,
    pub using: Using,
    pub assignments: Vec<Assignment>,
    pub where_clause: Vec<Relation>,
    pub if_clause: Option<IfClause>,
}

/// What DELETE removes when columns are named.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteTarget {
    Column(String),
    Element { column: String, key: Term },
    Field { column: String, field: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeleteStatement {
    /// Empty means the whole row(s).
    pub targets: Vec<DeleteTarget>,
    pub table: QualifiedName,
    pub using: Using,
    pub where_clause: Vec<Relation>,
    pub if_clause: Option<IfClause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

/// A statement allowed inside a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchChild {
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatement {
    pub kind: BatchKind,
    pub using: Using,
    pub statements: Vec<BatchChild>,
}

/// A `WITH` property value: a constant, a bare word, or a map of constants.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    Constant(Constant),
    /// An unquoted word used as a value (`caching = ALL`), kept lowercased.
    Name(String),
    Map(Vec<(Constant, Constant)>),
}

/// `WITH a = v AND b = {...}`.
pub type Properties = Vec<(String, PropertyValue)>;

#[derive(Debug, Clone, PartialEq)]
pub struct CreateKeyspace {
    pub if_not_exists: bool,
    pub name: String,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlterKeyspace {
    pub name: String,
    pub properties: Properties,
}

/// A column in CREATE TABLE or ALTER TABLE ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDefinition {
    pub name: String,
    pub ty: CqlType,
    pub is_static: bool,
    /// Declared with an inline `PRIMARY KEY`.
    pub primary_key: bool,
}

/// `PRIMARY KEY ((a, b), c, d)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub partition_key: Vec<String>,
    pub clustering_columns: Vec<String>,
}

/// The `WITH` part of CREATE TABLE / VIEW and ALTER TABLE.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableOptions {
    pub properties: Properties,
    pub clustering_order: Vec<(String, Order)>,
    pub compact_storage: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub columns: Vec<ColumnDefinition>,
    /// The `PRIMARY KEY (...)` clause, if written as a separate clause.
    pub primary_key: Option<PrimaryKey>,
    pub options: TableOptions,
}

impl CreateTable {
    /// The effective primary key from the clause or the single inline `PRIMARY KEY` column.
    pub fn key(&self) -> Result<PrimaryKey, String> {
        let inline: Vec<&ColumnDefinition> =
            self.columns.iter().filter(|c| c.primary_key).collect();
        match (&self.primary_key, inline.as_slice()) {
            (Some(key), []) => Ok(key.clone()),
            (None, [column]) => Ok(PrimaryKey {
                partition_key: vec![column.name.clone()],
                clustering_columns: Vec::new(),
            }),
            (None, []) => Err("No PRIMARY KEY specified (exactly one required)".to_string()),
            _ => Err("Multiple PRIMARY KEYs specified (exactly one required)".to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterTableOperation {
    Add(Vec<ColumnDefinition>),
    Drop {
        columns: Vec<String>,
        timestamp: Option<Term>,
    },
    Rename(Vec<(String, String)>),
    AlterColumnType {
        column: String,
        ty: CqlType,
    },
    With(TableOptions),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlterTable {
    pub name: QualifiedName,
    pub operation: AlterTableOperation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateType {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub fields: Vec<(String, CqlType)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterTypeOperation {
    Add { field: String, ty: CqlType },
    Rename(Vec<(String, String)>),
    AlterFieldType { field: String, ty: CqlType },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlterType {
    pub name: QualifiedName,
    pub operation: AlterTypeOperation,
}

/// Which part of a column an index covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexTargetKind {
    Simple,
    Keys,
    Values,
    Entries,
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTarget {
    pub column: String,
    pub kind: IndexTargetKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateIndex {
    pub custom: bool,
    pub if_not_exists: bool,
    pub name: Option<String>,
    pub table: QualifiedName,
    /// Empty for `ON t ()`, which the executor rejects.
    pub targets: Vec<IndexTarget>,
    pub using: Option<String>,
    /// `WITH OPTIONS = {...}` and any other properties.
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateMaterializedView {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub selection: Selection,
    pub base_table: QualifiedName,
    pub where_clause: Vec<Relation>,
    pub primary_key: PrimaryKey,
    pub options: TableOptions,
}

/// `DROP KEYSPACE | TABLE | TYPE | INDEX | MATERIALIZED VIEW`.
#[derive(Debug, Clone, PartialEq)]
pub struct Drop {
    pub if_exists: bool,
    pub name: QualifiedName,
}

/// A minimally parsed auth statement: the executor may reject all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthStatement {
    /// Leading words, uppercased (`CREATE ROLE`, `GRANT`, `LIST ROLES`, ...).
    pub verb: String,
    /// The remaining tokens' source text.
    pub rest: Vec<String>,
}

/// One parsed CQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Use(String),
    Select(SelectStatement),
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
    Batch(BatchStatement),
    CreateKeyspace(CreateKeyspace),
    AlterKeyspace(AlterKeyspace),
    /// `name.keyspace` is always `None`; the keyspace is `name.name`.
    DropKeyspace(Drop),
    CreateTable(CreateTable),
    AlterTable(AlterTable),
    DropTable(Drop),
    Truncate(QualifiedName),
    CreateType(CreateType),
    AlterType(AlterType),
    DropType(Drop),
    CreateIndex(CreateIndex),
    DropIndex(Drop),
    CreateMaterializedView(CreateMaterializedView),
    DropMaterializedView(Drop),
    Auth(AuthStatement),
}

/// Words that can never be an unquoted identifier.
pub const RESERVED_WORDS: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "false",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "is",
    "keyspace",
    "limit",
    "materialized",
    "mbean",
    "mbeans",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "true",
    "truncate",
    "unlogged",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// True if `word` (any case) is reserved.
pub fn is_reserved(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    RESERVED_WORDS.contains(&lower.as_str())
}

/// True for names the lexer would read as an ISO duration literal (`p1d`).
fn looks_like_duration(name: &str) -> bool {
    name.strip_prefix('p')
        .is_some_and(|body| super::lexer::iso_units_form(&body.to_ascii_uppercase()))
}

/// Writes an identifier, double-quoting it unless it reads back unchanged unquoted.
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !is_reserved(s)
            && !looks_like_duration(s);
        if plain {
            f.write_str(s)
        } else {
            write!(f, "\"{}\"", s.replace('"', "\"\""))
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ks) = &self.keyspace {
            write!(f, "{}.", Ident(ks))?;
        }
        write!(f, "{}", Ident(&self.name))
    }
}

/// Writes a function name; `token` is reserved yet callable, so it stays unquoted.
struct FunctionName<'a>(&'a QualifiedName);

impl fmt::Display for FunctionName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            QualifiedName {
                keyspace: None,
                name,
            } if name == "token" => f.write_str("token"),
            name => write!(f, "{name}"),
        }
    }
}

impl fmt::Display for Constant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ConstantKind::String => write!(f, "'{}'", self.text.replace('\'', "''")),
            _ => f.write_str(&self.text),
        }
    }
}

impl fmt::Display for BindMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, ":{}", Ident(name)),
            None => f.write_str("?"),
        }
    }
}

/// Writes items separated by `, `.
pub(crate) fn comma_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Constant(c) => write!(f, "{c}"),
            Term::Null => f.write_str("null"),
            Term::Bind(b) => write!(f, "{b}"),
            Term::List(items) => {
                f.write_str("[")?;
                comma_list(f, items)?;
                f.write_str("]")
            }
            Term::Set(items) => {
                f.write_str("{")?;
                comma_list(f, items)?;
                f.write_str("}")
            }
            Term::Map(entries) => {
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Term::Udt(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}: {v}", Ident(k)))
                    .collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Term::EmptyBraces => f.write_str("{}"),
            Term::Tuple(items) => {
                f.write_str("(")?;
                comma_list(f, items)?;
                f.write_str(")")
            }
            Term::FunctionCall { name, args } => {
                write!(f, "{}(", FunctionName(name))?;
                comma_list(f, args)?;
                f.write_str(")")
            }
            Term::TypeHint { ty, term } => write!(f, "({ty}) {term}"),
        }
    }
}

impl NativeType {
    /// The CQL name of the type.
    pub fn name(self) -> &'static str {
        NATIVE_TYPES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every native type is in NATIVE_TYPES")
    }

    /// Looks a native type up by name (any case); `varchar` is `Text`.
    pub fn from_name(name: &str) -> Option<NativeType> {
        let lower = name.to_ascii_lowercase();
        if lower == "varchar" {
            return Some(NativeType::Text);
        }
        NATIVE_TYPES
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, t)| *t)
    }
}

const NATIVE_TYPES: &[(&str, NativeType)] = &[
    ("ascii", NativeType::Ascii),
    ("bigint", NativeType::Bigint),
    ("blob", NativeType::Blob),
    ("boolean", NativeType::Boolean),
    ("counter", NativeType::Counter),
    ("date", NativeType::Date),
    ("decimal", NativeType::Decimal),
    ("double", NativeType::Double),
    ("duration", NativeType::Duration),
    ("float", NativeType::Float),
    ("inet", NativeType::Inet),
    ("int", NativeType::Int),
    ("smallint", NativeType::Smallint),
    ("text", NativeType::Text),
    ("time", NativeType::Time),
    ("timestamp", NativeType::Timestamp),
    ("timeuuid", NativeType::Timeuuid),
    ("tinyint", NativeType::Tinyint),
    ("uuid", NativeType::Uuid),
    ("varint", NativeType::Varint),
];

impl fmt::Display for NativeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CqlType::Native(t) => write!(f, "{t}"),
            CqlType::List(t) => write!(f, "list<{t}>"),
            CqlType::Set(t) => write!(f, "set<{t}>"),
            CqlType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            CqlType::Tuple(items) => {
                f.write_str("tuple<")?;
                comma_list(f, items)?;
                f.write_str(">")
            }
            CqlType::Frozen(t) => write!(f, "frozen<{t}>"),
            CqlType::UserDefined(name) => write!(f, "{name}"),
            CqlType::Custom(class) => write!(f, "'{}'", class.replace('\'', "''")),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Eq => "=",
            Operator::Neq => "!=",
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Contains => "CONTAINS",
            Operator::ContainsKey => "CONTAINS KEY",
            Operator::Like => "LIKE",
        })
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        })
    }
}

impl fmt::Display for Selectable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selectable::Column(c) => write!(f, "{}", Ident(c)),
            Selectable::Term(t) => write!(f, "{t}"),
            Selectable::CountRows => f.write_str("count(*)"),
            Selectable::WriteTime(c) => write!(f, "writetime({})", Ident(c)),
            Selectable::Ttl(c) => write!(f, "ttl({})", Ident(c)),
            Selectable::Function { name, args } => {
                write!(f, "{}(", FunctionName(name))?;
                comma_list(f, args)?;
                f.write_str(")")
            }
            Selectable::Cast { arg, ty } => write!(f, "cast({arg} AS {ty})"),
            Selectable::Field { base, field } => write!(f, "{base}.{}", Ident(field)),
            Selectable::Element { base, key } => write!(f, "{base}[{key}]"),
        }
    }
}

impl fmt::Display for InValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InValues::List(items) => {
                f.write_str("(")?;
                comma_list(f, items)?;
                f.write_str(")")
            }
            InValues::Marker(m) => write!(f, "{m}"),
        }
    }
}

fn column_tuple(columns: &[String]) -> String {
    let names: Vec<String> = columns.iter().map(|c| Ident(c).to_string()).collect();
    format!("({})", names.join(", "))
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Relation::Simple { column, op, value } => write!(f, "{} {op} {value}", Ident(column)),
            Relation::In { column, values } => write!(f, "{} IN {values}", Ident(column)),
            Relation::Element {
                column,
                key,
                op,
                value,
            } => write!(f, "{}[{key}] {op} {value}", Ident(column)),
            Relation::MultiColumn { columns, op, value } => {
                write!(f, "{} {op} {value}", column_tuple(columns))
            }
            Relation::MultiColumnIn { columns, values } => {
                write!(f, "{} IN {values}", column_tuple(columns))
            }
            Relation::Token { columns, op, value } => {
                write!(f, "token{} {op} {value}", column_tuple(columns))
            }
            Relation::IsNotNull { column } => write!(f, "{} IS NOT NULL", Ident(column)),
        }
    }
}
