//! The WHERE clause and ORDER BY: splitting restrictions into the
//! partitions to read, the clustering slices in each, and the filters.
use super::*;

/// Splits a WHERE clause into partition, clustering and filter parts.
pub(super) struct WherePlanner<'a> {
    pub(super) table: &'a TableDef,
    pub(super) allow_filtering: bool,
    pub(super) binds: &'a mut BindSpecs,
    pub(super) partition: PartitionPlan,
    pub(super) clustering: ClusteringPlan,
    pub(super) filters: Vec<Filter>,
}

/// A single-column relation, normalised.
#[derive(Debug, Clone)]
pub(super) enum Single {
    Op(Operator, Term),
    In(InValues),
}

impl<'a> WherePlanner<'a> {
    pub(super) fn new(
        table: &'a TableDef,
        allow_filtering: bool,
        binds: &'a mut BindSpecs,
    ) -> Self {
        WherePlanner {
            table,
            allow_filtering,
            binds,
            partition: PartitionPlan::Scan,
            clustering: ClusteringPlan::default(),
            filters: Vec::new(),
        }
    }

    pub(super) fn column(&self, i: usize) -> &'a ColumnDef {
        &self.table.columns[i]
    }

    pub(super) fn plan(&mut self, relations: &[Relation]) -> Result<(), CqlError> {
        let mut singles: Vec<Vec<Single>> = vec![Vec::new(); self.table.columns.len()];
        let mut tokens = Vec::new();
        let mut multis = Vec::new();
        for relation in relations {
            match relation {
                Relation::Simple {
                    column,
                    op: Operator::Neq,
                    value,
                } => {
                    // `!=` exists for conditions (IF), never in a WHERE clause.
                    return Err(invalid(format!(
                        "Unsupported \"!=\" relation: {column} != {value}"
                    )));
                }
                Relation::Simple { column, op, value } => {
                    let i = column_index(self.table, column)?;
                    self.collect_single(i, *op, value)?;
                    singles[i].push(Single::Op(*op, value.clone()));
                }
                Relation::In { column, values } => {
                    let i = column_index(self.table, column)?;
                    self.collect_in(i, values);
                    singles[i].push(Single::In(values.clone()));
                }
                Relation::Token { columns, op, value } => {
                    self.check_token_columns(columns)?;
                    self.binds
                        .collect(value, "partition key token", &CqlType::Bigint);
                    tokens.push((*op, value.clone()));
                }
                Relation::MultiColumn { .. } | Relation::MultiColumnIn { .. } => {
                    multis.push(self.multi_relation(relation)?);
                }
                Relation::Element { .. } => {
                    return Err(invalid("Element relations (c[k] = v) are not supported"))
                }
                Relation::IsNotNull { column } => {
                    return Err(invalid(format!(
                        "Unsupported restriction: {} IS NOT NULL",
                        ast::Ident(column)
                    )))
                }
            }
        }
        self.plan_partition(&mut singles, tokens)?;
        let ranged = !matches!(self.partition, PartitionPlan::Keys(_));
        self.plan_clustering(&mut singles, multis)?;
        if ranged && !self.clustering.is_empty() && !self.allow_filtering {
            return Err(invalid(REQUIRES_ALLOW_FILTERING));
        }
        self.plan_regular(singles)
    }

    pub(super) fn collect_single(
        &mut self,
        i: usize,
        op: Operator,
        value: &Term,
    ) -> Result<(), CqlError> {
        let c = self.column(i);
        let (name, ty) = match op {
            Operator::Contains => (
                format!("value({})", c.name),
                element_type(&c.ty).ok_or_else(|| {
                    invalid(format!(
                        "Cannot use CONTAINS on non-collection column {}",
                        c.name
                    ))
                })?,
            ),
            Operator::ContainsKey => match &c.ty {
                CqlType::Map { key, .. } => (format!("key({})", c.name), (**key).clone()),
                _ => {
                    return Err(invalid(format!(
                        "Cannot use CONTAINS KEY on non-map column {}",
                        c.name
                    )))
                }
            },
            Operator::Like => return Err(invalid("LIKE restrictions are not supported")),
            _ => (c.name.clone(), c.ty.clone()),
        };
        self.binds.collect(value, &name, &ty);
        Ok(())
    }

    pub(super) fn collect_in(&mut self, i: usize, values: &InValues) {
        let c = self.column(i);
        collect_in_values(self.binds, values, &c.name, &c.ty);
    }

    pub(super) fn check_token_columns(&self, columns: &[String]) -> Result<(), CqlError> {
        let pk: Vec<&str> = self
            .table
            .partition_key()
            .map(|c| c.name.as_str())
            .collect();
        for c in columns {
            column_index(self.table, c)?;
        }
        let mut distinct: Vec<&String> = columns.iter().collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != columns.len() {
            return Err(invalid(
                "The token() function contains duplicate partition key components",
            ));
        }
        if columns.len() != pk.len() {
            return Err(invalid(format!(
                "Invalid number of arguments in call to function token: {} required but {} provided",
                pk.len(),
                columns.len()
            )));
        }
        if columns.iter().map(String::as_str).ne(pk.iter().copied()) {
            return Err(invalid(format!(
                "The token function arguments must be in the partition key order: {}",
                pk.join(", ")
            )));
        }
        Ok(())
    }
}

pub(super) fn collect_in_values(
    binds: &mut BindSpecs,
    values: &InValues,
    name: &str,
    ty: &CqlType,
) {
    match values {
        InValues::List(terms) => {
            for t in terms {
                binds.collect(t, name, ty);
            }
        }
        InValues::Marker(m) => {
            let list = CqlType::list(ty.clone(), false);
            let name = m.name.clone().unwrap_or_else(|| format!("in({name})"));
            binds.set(m.index, &name, &list);
        }
    }
}

/// A multi-column relation on clustering columns, normalised.
#[derive(Debug, Clone)]
pub(super) struct Multi {
    pub(super) positions: Vec<usize>,
    pub(super) columns: Vec<usize>,
    pub(super) rel: Single,
}

impl WherePlanner<'_> {
    pub(super) fn multi_relation(&mut self, relation: &Relation) -> Result<Multi, CqlError> {
        let (names, rel) = match relation {
            Relation::MultiColumn { columns, op, value } => {
                (columns, Single::Op(*op, value.clone()))
            }
            Relation::MultiColumnIn { columns, values } => (columns, Single::In(values.clone())),
            _ => unreachable!("only multi-column relations are passed"),
        };
        let mut columns = Vec::new();
        for name in names {
            let i = column_index(self.table, name)?;
            if self.column(i).kind != ColumnKind::Clustering {
                return Err(invalid(format!(
                    "Multi-column relations can only be applied to clustering columns but was applied to: {name}"
                )));
            }
            columns.push(i);
        }
        let positions: Vec<usize> = columns
            .iter()
            .map(|&i| self.column(i).position as usize)
            .collect();
        if positions.windows(2).any(|w| w[1] != w[0] + 1) {
            let listed: Vec<&str> = names.iter().map(String::as_str).collect();
            return Err(invalid(format!(
                "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: ({})",
                listed.join(", ")
            )));
        }
        let ty = CqlType::tuple(columns.iter().map(|&i| self.column(i).ty.clone()).collect());
        let display = format!("({})", names.join(","));
        match &rel {
            Single::Op(op, value) => {
                if !matches!(
                    op,
                    Operator::Eq | Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
                ) {
                    return Err(invalid(format!(
                        "Unsupported \"{op}\" relation: {relation}"
                    )));
                }
                self.binds.collect(value, &display, &ty);
            }
            Single::In(values) => collect_in_values(self.binds, values, &display, &ty),
        }
        Ok(Multi {
            positions,
            columns,
            rel,
        })
    }

    pub(super) fn plan_partition(
        &mut self,
        singles: &mut [Vec<Single>],
        tokens: Vec<(Operator, Term)>,
    ) -> Result<(), CqlError> {
        let pk: Vec<usize> = (0..self.table.columns.len())
            .filter(|&i| self.column(i).kind == ColumnKind::PartitionKey)
            .collect();
        let restricted: Vec<usize> = pk
            .iter()
            .copied()
            .filter(|&i| !singles[i].is_empty())
            .collect();
        if !tokens.is_empty() {
            if let Some(&i) = restricted.first() {
                return Err(invalid(format!(
                    "Columns \"{}\" cannot be restricted by both a normal relation and a token relation",
                    self.column(i).name
                )));
            }
            self.partition = token_plan(tokens)?;
            return Ok(());
        }
        let all_eq = pk.iter().all(|&i| {
            matches!(
                singles[i].as_slice(),
                [Single::Op(Operator::Eq, _)] | [Single::In(_)]
            )
        });
        if all_eq {
            let parts = pk
                .iter()
                .map(|&i| match std::mem::take(&mut singles[i]).remove(0) {
                    Single::Op(_, t) => ValuesPlan::Eq(t),
                    Single::In(v) => ValuesPlan::In(v),
                })
                .collect();
            self.partition = PartitionPlan::Keys(parts);
            return Ok(());
        }
        for &i in &restricted {
            self.check_duplicate_eq(i, &singles[i])?;
            let slice = singles[i]
                .iter()
                .any(|s| !matches!(s, Single::Op(Operator::Eq, _) | Single::In(_)));
            if !self.allow_filtering {
                return Err(invalid(if slice {
                    "Only EQ and IN relation are supported on the partition key (unless you use the token() function or allow filtering)"
                } else {
                    REQUIRES_ALLOW_FILTERING
                }));
            }
            self.add_filters(i, std::mem::take(&mut singles[i]));
        }
        Ok(())
    }

    pub(super) fn check_duplicate_eq(&self, i: usize, rels: &[Single]) -> Result<(), CqlError> {
        let has_eq = rels
            .iter()
            .any(|s| matches!(s, Single::Op(Operator::Eq, _) | Single::In(_)));
        if has_eq && rels.len() > 1 {
            return Err(invalid(format!(
                "{} cannot be restricted by more than one relation if it includes an Equal",
                self.column(i).name
            )));
        }
        Ok(())
    }

    pub(super) fn add_filters(&mut self, i: usize, rels: Vec<Single>) {
        for rel in rels {
            let (op, value) = match rel {
                Single::Op(op, t) => (op, FilterValue::Term(t)),
                Single::In(v) => (Operator::Eq, FilterValue::In(v)),
            };
            self.filters.push(Filter {
                columns: vec![i],
                tuple: false,
                op,
                value,
            });
        }
    }

    pub(super) fn plan_regular(&mut self, singles: Vec<Vec<Single>>) -> Result<(), CqlError> {
        for (i, rels) in singles.into_iter().enumerate() {
            if rels.is_empty() {
                continue;
            }
            if !self.allow_filtering {
                return Err(invalid(REQUIRES_ALLOW_FILTERING));
            }
            self.add_filters(i, rels);
        }
        Ok(())
    }
}

pub(super) fn token_plan(tokens: Vec<(Operator, Term)>) -> Result<PartitionPlan, CqlError> {
    let mut start = None;
    let mut end = None;
    for (op, term) in tokens {
        let (slot, incl, which) = match op {
            Operator::Gt => (&mut start, false, "start"),
            Operator::Gte => (&mut start, true, "start"),
            Operator::Lt => (&mut end, false, "end"),
            Operator::Lte => (&mut end, true, "end"),
            Operator::Eq => {
                if start.is_some() || end.is_some() {
                    return Err(invalid("More than one restriction was found for the start bound on partition key token"));
                }
                start = Some((term.clone(), true));
                end = Some((term, true));
                continue;
            }
            _ => {
                return Err(invalid(format!(
                    "Unsupported \"{op}\" relation on the partition key token"
                )))
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "More than one restriction was found for the {which} bound on partition key token"
            )));
        }
        *slot = Some((term, incl));
    }
    Ok(PartitionPlan::Tokens { start, end })
}

// ---------------------------------------------------------------- clustering

impl WherePlanner<'_> {
    pub(super) fn clustering_columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = (0..self.table.columns.len())
            .filter(|&i| self.column(i).kind == ColumnKind::Clustering)
            .collect();
        cols.sort_by_key(|&i| self.column(i).position);
        cols
    }

    pub(super) fn plan_clustering(
        &mut self,
        singles: &mut [Vec<Single>],
        multis: Vec<Multi>,
    ) -> Result<(), CqlError> {
        let cols = self.clustering_columns();
        let single_used = cols.iter().any(|&i| !singles[i].is_empty());
        if !multis.is_empty() {
            if single_used {
                return Err(invalid(
                    "Mixing single column relations and multi column relations on clustering columns is not allowed",
                ));
            }
            return self.plan_multi(&cols, multis);
        }
        let mut stop: Option<(usize, bool)> = None; // (position, true if after a slice)
        for (pos, &i) in cols.iter().enumerate() {
            let rels = std::mem::take(&mut singles[i]);
            if let Some((prev, after_slice)) = stop {
                if !rels.is_empty() {
                    self.clustering_needs_filtering(i, cols[prev], after_slice)?;
                    self.add_filters(i, rels);
                }
                continue;
            }
            if rels.is_empty() {
                stop = Some((pos, false));
                continue;
            }
            self.check_duplicate_eq(i, &rels)?;
            match &rels[0] {
                Single::Op(Operator::Eq, t) => self.clustering.prefix.push(PrefixPart {
                    first: pos,
                    width: 1,
                    multi: false,
                    values: ValuesPlan::Eq(t.clone()),
                }),
                Single::In(v) => self.clustering.prefix.push(PrefixPart {
                    first: pos,
                    width: 1,
                    multi: false,
                    values: ValuesPlan::In(v.clone()),
                }),
                _ => {
                    let (slice, rest) = self.single_slice(i, pos, rels)?;
                    self.clustering.slice = slice;
                    if !rest.is_empty() {
                        if !self.allow_filtering {
                            return Err(invalid(REQUIRES_ALLOW_FILTERING));
                        }
                        self.add_filters(i, rest);
                    }
                    stop = Some((pos, true));
                }
            }
        }
        Ok(())
    }

    pub(super) fn clustering_needs_filtering(
        &self,
        i: usize,
        prev: usize,
        after_slice: bool,
    ) -> Result<(), CqlError> {
        if self.allow_filtering {
            return Ok(());
        }
        let (c, p) = (&self.column(i).name, &self.column(prev).name);
        Err(invalid(if after_slice {
            format!("Clustering column \"{c}\" cannot be restricted (preceding column \"{p}\" is restricted by a non-EQ relation)")
        } else {
            format!("PRIMARY KEY column \"{c}\" cannot be restricted as preceding column \"{p}\" is not restricted")
        }))
    }

    /// The slice of single-column bounds on clustering column `i`; other
    /// relations on it (`!=`, CONTAINS) are returned to be filtered.
    pub(super) fn single_slice(
        &self,
        i: usize,
        pos: usize,
        rels: Vec<Single>,
    ) -> Result<(Option<SlicePlan>, Vec<Single>), CqlError> {
        let mut slice = SlicePlan {
            first: pos,
            tuples: false,
            multi: false,
            lower: None,
            upper: None,
        };
        let mut rest = Vec::new();
        for rel in rels {
            match rel {
                Single::Op(
                    op @ (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte),
                    t,
                ) => self.set_bound(&mut slice, op, t, 1, &self.column(i).name)?,
                other => rest.push(other),
            }
        }
        let slice = (slice.lower.is_some() || slice.upper.is_some()).then_some(slice);
        Ok((slice, rest))
    }

    pub(super) fn set_bound(
        &self,
        slice: &mut SlicePlan,
        op: Operator,
        t: Term,
        width: usize,
        name: &str,
    ) -> Result<(), CqlError> {
        let (slot, which, incl) = match op {
            Operator::Gt => (&mut slice.lower, "start", false),
            Operator::Gte => (&mut slice.lower, "start", true),
            Operator::Lt => (&mut slice.upper, "end", false),
            _ => (&mut slice.upper, "end", true),
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "More than one restriction was found for the {which} bound on {name}"
            )));
        }
        *slot = Some((t, width, incl));
        Ok(())
    }

    pub(super) fn plan_multi(
        &mut self,
        cols: &[usize],
        multis: Vec<Multi>,
    ) -> Result<(), CqlError> {
        let mut slice = SlicePlan {
            first: 0,
            tuples: true,
            multi: true,
            lower: None,
            upper: None,
        };
        let mut mixed_order = false;
        let mut slices = Vec::new();
        for m in multis {
            if m.positions.first() != Some(&0) {
                let first = m.columns[0];
                self.clustering_needs_filtering(first, cols[0], false)?;
                self.filters.push(multi_filter(m));
                continue;
            }
            match &m.rel {
                Single::Op(Operator::Eq, t) => {
                    self.push_multi_prefix(m.columns.len(), ValuesPlan::Eq(t.clone()))?
                }
                Single::In(v) => {
                    self.push_multi_prefix(m.columns.len(), ValuesPlan::In(v.clone()))?
                }
                Single::Op(op, t) => {
                    // Bounds are named by their first column, as Cassandra does.
                    let first = self.column(m.columns[0]).name.clone();
                    self.set_bound(&mut slice, *op, t.clone(), m.columns.len(), &first)?;
                    let desc = self.column(m.columns[0]).descending;
                    mixed_order |= m.columns.iter().any(|&i| self.column(i).descending != desc);
                    slices.push(m);
                }
            }
        }
        if mixed_order {
            // The storage slice then covers the first column only (inclusive);
            // the exact tuple comparisons are applied to the rows read.
            self.filters.extend(slices.into_iter().map(multi_filter));
        }
        if slice.lower.is_some() || slice.upper.is_some() {
            if !self.clustering.prefix.is_empty() {
                return Err(invalid(
                    "Multi-column slice restrictions cannot be combined with equality restrictions",
                ));
            }
            if mixed_order {
                slice.multi = false;
                slice.lower = slice.lower.map(|(t, w, _)| (t, w, true));
                slice.upper = slice.upper.map(|(t, w, _)| (t, w, true));
            }
            self.clustering.slice = Some(slice);
        }
        Ok(())
    }

    pub(super) fn push_multi_prefix(
        &mut self,
        width: usize,
        values: ValuesPlan,
    ) -> Result<(), CqlError> {
        if !self.clustering.prefix.is_empty() {
            return Err(invalid(
                "Clustering columns cannot be restricted by more than one multi-column equality",
            ));
        }
        self.clustering.prefix.push(PrefixPart {
            first: 0,
            width,
            multi: true,
            values,
        });
        Ok(())
    }
}

pub(super) fn multi_filter(m: Multi) -> Filter {
    let (op, value) = match m.rel {
        Single::Op(op, t) => (op, FilterValue::Term(t)),
        Single::In(v) => (Operator::Eq, FilterValue::In(v)),
    };
    Filter {
        columns: m.columns,
        tuple: true,
        op,
        value,
    }
}

// ---------------------------------------------------------------- order by

pub(super) fn prepare_order_by(
    order_by: &[(String, Order)],
    table: &TableDef,
    partition: &PartitionPlan,
) -> Result<bool, CqlError> {
    if order_by.is_empty() {
        return Ok(false);
    }
    let mut reversed = None;
    for (n, (name, order)) in order_by.iter().enumerate() {
        let i = column_index(table, name)?;
        let c = &table.columns[i];
        if c.kind != ColumnKind::Clustering {
            return Err(invalid(format!(
                "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}"
            )));
        }
        if c.position as usize != n {
            return Err(invalid(
                "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
            ));
        }
        let this = (*order == Order::Desc) != c.descending;
        if reversed.is_some_and(|r| r != this) {
            return Err(invalid("Unsupported order by relation"));
        }
        reversed = Some(this);
    }
    if !matches!(partition, PartitionPlan::Keys(_)) {
        return Err(invalid(
            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
        ));
    }
    Ok(reversed.unwrap_or(false))
}
