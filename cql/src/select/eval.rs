//! Evaluating a plan's terms with the bound values: partition keys, tokens,
//! clustering slices and limits of one execution.
use super::*;

pub(super) fn required(
    term: &Term,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
    what: &str,
) -> Result<Bytes, CqlError> {
    eval(term, ty, ctx)?.required(what)
}

/// The values of `= term` / `IN ...` against `ty` (a tuple type for multi-column parts).
pub(super) fn eval_values(
    plan: &ValuesPlan,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
    what: &str,
) -> Result<Vec<Bytes>, CqlError> {
    match plan {
        ValuesPlan::Eq(t) => Ok(vec![required(t, ty, ctx, what)?]),
        ValuesPlan::In(InValues::List(terms)) => terms
            .iter()
            .map(|t| {
                if let (Term::Tuple(items), CqlType::Tuple(types)) = (t, ty) {
                    // Too few elements is the tuple's own error (`tuple_parts`);
                    // too many is the list literal's, as Cassandra words it.
                    if items.len() > types.len() {
                        return Err(invalid(format!(
                            "Invalid list literal for in{what}: value {t} is not of type frozen<{}>",
                            ty.cql_name()
                        )));
                    }
                }
                required(t, ty, ctx, what)
            })
            .collect(),
        ValuesPlan::In(InValues::Marker(m)) => {
            let list = CqlType::list(ty.clone(), false);
            match eval(&Term::Bind(m.clone()), &list, ctx)? {
                Evaluated::Value(v) => Ok(types::parse_collection(&v)?
                    .into_iter()
                    .map(Bytes::copy_from_slice)
                    .collect()),
                Evaluated::Null => Err(invalid(format!("Invalid null value for {what}"))),
                Evaluated::Unset => Err(invalid(format!("Invalid unset value for {what}"))),
            }
        }
    }
}

/// Splits a serialized tuple of `width` components; nulls are refused.
pub(super) fn tuple_parts(value: &[u8], width: usize, what: &str) -> Result<Vec<Bytes>, CqlError> {
    let parts = types::parse_tuple(value)?;
    if parts.len() != width {
        return Err(invalid(format!(
            "Expected {width} elements in value tuple, but got {} (for {what})",
            parts.len()
        )));
    }
    parts
        .into_iter()
        .map(|p| {
            p.map(Bytes::copy_from_slice).ok_or_else(|| {
                invalid(format!(
                    "Invalid null value in condition for columns {what}"
                ))
            })
        })
        .collect()
}

pub(super) fn evaluate_limit(
    term: &Option<Term>,
    what: &str,
    ctx: &EvalContext<'_>,
) -> Result<usize, CqlError> {
    let Some(term) = term else {
        return Ok(usize::MAX);
    };
    match eval(term, &CqlType::Int, ctx)? {
        Evaluated::Unset => Ok(usize::MAX),
        Evaluated::Null => Err(invalid(format!(
            "Invalid null value of {}",
            what.to_ascii_lowercase()
        ))),
        Evaluated::Value(v) => {
            let n = <[u8; 4]>::try_from(&v[..])
                .map(i32::from_be_bytes)
                .map_err(|_| invalid("Invalid limit value"))?;
            usize::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(format!("{what} must be strictly positive")))
        }
    }
}

/// The partitions to read, resolved.
pub(super) enum Partitions {
    Keys(Vec<DecoratedKey>),
    Range(PartitionRange),
    Empty,
}

impl SelectPlan {
    pub(super) fn pk_columns(&self) -> Vec<&ColumnDef> {
        self.table.partition_key().collect()
    }

    pub(super) fn resolve_partitions(&self, ctx: &EvalContext<'_>) -> Result<Partitions, CqlError> {
        match &self.partition {
            PartitionPlan::Scan => Ok(Partitions::Range(PartitionRange::full())),
            PartitionPlan::Tokens { start, end } => resolve_tokens(start, end, ctx),
            PartitionPlan::Keys(parts) => {
                let single_column = self.table.partition_key_len() == 1;
                if let ([ValuesPlan::Eq(term)], Some(col), true) = (
                    parts.as_slice(),
                    self.table.partition_key().next(),
                    single_column,
                ) {
                    // The point read: one key column, one value, which is
                    // the serialized key itself.
                    let key = eval(term, &col.ty, ctx)?
                        .required_with(|| format!("partition key part {}", col.name))?;
                    return Ok(Partitions::Keys(vec![DecoratedKey::new(
                        murmur3_token(&key),
                        key,
                    )]));
                }
                let cols = self.pk_columns();
                let mut combos: Vec<Vec<Bytes>> = vec![Vec::new()];
                for (part, col) in parts.iter().zip(&cols) {
                    let what = format!("partition key part {}", col.name);
                    let values = eval_values(part, &col.ty, ctx, &what)?;
                    combos = cartesian(combos, values.into_iter().map(|v| vec![v]).collect());
                }
                combos.sort_by(|a, b| compare_tuples(a, b, cols.iter().map(|c| &c.ty)));
                combos.dedup();
                let keys = combos
                    .iter()
                    .map(|combo| {
                        let parts: Vec<&[u8]> = combo.iter().map(|b| &b[..]).collect();
                        let key =
                            serialize_partition_key(&parts).map_err(|e| invalid(e.to_string()))?;
                        Ok(DecoratedKey::new(murmur3_token(&key), key))
                    })
                    .collect::<Result<Vec<_>, CqlError>>()?;
                Ok(Partitions::Keys(keys))
            }
        }
    }
}

pub(super) fn cartesian(combos: Vec<Vec<Bytes>>, values: Vec<Vec<Bytes>>) -> Vec<Vec<Bytes>> {
    let mut out = Vec::with_capacity(combos.len() * values.len());
    for combo in &combos {
        for v in &values {
            let mut next = combo.clone();
            next.extend(v.iter().cloned());
            out.push(next);
        }
    }
    out
}

pub(super) fn compare_tuples<'t>(
    a: &[Bytes],
    b: &[Bytes],
    types: impl Iterator<Item = &'t CqlType>,
) -> Ordering {
    for ((x, y), ty) in a.iter().zip(b).zip(types) {
        match ty.compare(x, y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

pub(super) fn token_value(term: &Term, ctx: &EvalContext<'_>) -> Result<i64, CqlError> {
    let v = required(term, &CqlType::Bigint, ctx, "partition key token")?;
    <[u8; 8]>::try_from(&v[..])
        .map(i64::from_be_bytes)
        .map_err(|_| invalid("Invalid token value"))
}

pub(super) fn resolve_tokens(
    start: &Option<(Term, bool)>,
    end: &Option<(Term, bool)>,
    ctx: &EvalContext<'_>,
) -> Result<Partitions, CqlError> {
    let start = start
        .as_ref()
        .map(|(t, incl)| Ok::<_, CqlError>((token_value(t, ctx)?, *incl)))
        .transpose()?;
    let end = end
        .as_ref()
        .map(|(t, incl)| Ok::<_, CqlError>((token_value(t, ctx)?, *incl)))
        .transpose()?;
    // The minimum token stands for the start of the ring as a start bound
    // and for the end of the ring as an end bound.
    let start = start.filter(|(t, _)| *t != i64::MIN);
    let end = end.filter(|(t, _)| *t != i64::MIN);
    if let (Some((s, si)), Some((e, ei))) = (start, end) {
        if s > e || (s == e && !(si && ei)) {
            return Ok(Partitions::Empty);
        }
    }
    let bound = |b: Option<(i64, bool)>| match b {
        None => Bound::Unbounded,
        Some((t, true)) => Bound::Included(t),
        Some((t, false)) => Bound::Excluded(t),
    };
    Ok(Partitions::Range(PartitionRange::tokens(
        bound(start),
        bound(end),
    )))
}

impl SelectPlan {
    /// The clustering ranges to read, sorted in clustering order.
    pub(super) fn resolve_ranges(
        &self,
        ctx: &EvalContext<'_>,
    ) -> Result<Vec<ClusteringRange>, CqlError> {
        let types = self.table.clustering_types();
        let cols: Vec<&ColumnDef> = self.table.clustering_key().collect();
        let mut combos: Vec<Vec<Bytes>> = vec![Vec::new()];
        for part in &self.clustering.prefix {
            let (ty, what) = tuple_type(&cols[part.first..part.first + part.width], part.multi);
            let values = eval_values(&part.values, &ty, ctx, &what)?;
            let values = values
                .iter()
                .map(|v| {
                    if part.multi {
                        tuple_parts(v, part.width, &what)
                    } else {
                        Ok(vec![v.clone()])
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            combos = cartesian(combos, values);
        }
        let mut prefixes: Vec<Vec<u8>> = combos
            .iter()
            .map(|c| {
                types::encode_clustering(&types, &c.iter().map(|b| &b[..]).collect::<Vec<_>>())
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let slice = match &self.clustering.slice {
            Some(s) => Some(self.resolve_slice(s, &cols, &types, ctx)?),
            None => None,
        };
        Ok(prefixes
            .into_iter()
            .map(|p| slice_range(&p, slice.as_ref()))
            .collect())
    }

    pub(super) fn resolve_slice(
        &self,
        s: &SlicePlan,
        cols: &[&ColumnDef],
        types: &[(CqlType, bool)],
        ctx: &EvalContext<'_>,
    ) -> Result<ResolvedSlice, CqlError> {
        let bound = |b: &Option<(Term, usize, bool)>| -> Result<Option<(Vec<u8>, bool)>, CqlError> {
            let Some((term, width, incl)) = b else {
                return Ok(None);
            };
            let values = if s.tuples {
                let (ty, what) = tuple_type(&cols[s.first..s.first + width], true);
                let v = required(term, &ty, ctx, &what)?;
                let mut parts = tuple_parts(&v, *width, &what)?;
                if !s.multi {
                    parts.truncate(1);
                }
                parts
            } else {
                let c = cols[s.first];
                vec![
                    required(term, &c.ty, ctx, &format!("column {}", c.name)).map_err(|_| {
                        invalid(format!(
                            "Invalid null value in condition for column {}",
                            c.name
                        ))
                    })?,
                ]
            };
            let mut out = Vec::new();
            for (v, (ty, desc)) in values.iter().zip(&types[s.first..]) {
                ty.encode_key(v, *desc, &mut out);
            }
            Ok(Some((out, *incl)))
        };
        Ok(ResolvedSlice {
            lower: bound(&s.lower)?,
            upper: bound(&s.upper)?,
            descending: types[s.first].1,
        })
    }
}

/// A slice's bounds in key encoding (after the prefix); `descending` is the
/// order of its first column, which decides whether a lower bound is a start.
pub(super) struct ResolvedSlice {
    pub(super) lower: Option<(Vec<u8>, bool)>,
    pub(super) upper: Option<(Vec<u8>, bool)>,
    pub(super) descending: bool,
}

pub(super) fn tuple_type(cols: &[&ColumnDef], multi: bool) -> (CqlType, String) {
    if let (false, [c]) = (multi, cols) {
        return (c.ty.clone(), format!("column {}", c.name));
    }
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    (
        CqlType::tuple(cols.iter().map(|c| c.ty.clone()).collect()),
        format!("({})", names.join(",")),
    )
}

pub(super) fn slice_range(prefix: &[u8], slice: Option<&ResolvedSlice>) -> ClusteringRange {
    let Some(slice) = slice else {
        return if prefix.is_empty() {
            ClusteringRange::full()
        } else {
            ClusteringRange::prefix(prefix.to_vec())
        };
    };
    let with_prefix = |b: &Option<(Vec<u8>, bool)>| {
        b.as_ref().map(|(v, incl)| {
            let mut p = prefix.to_vec();
            p.extend_from_slice(v);
            ClusteringBound {
                prefix: p.into(),
                inclusive: *incl,
            }
        })
    };
    let (mut start, mut end) = if slice.descending {
        (with_prefix(&slice.upper), with_prefix(&slice.lower))
    } else {
        (with_prefix(&slice.lower), with_prefix(&slice.upper))
    };
    if !prefix.is_empty() {
        start = start.or_else(|| Some(ClusteringBound::inclusive(prefix.to_vec())));
        end = end.or_else(|| Some(ClusteringBound::inclusive(prefix.to_vec())));
    }
    ClusteringRange::new(start, end)
}

/// `ranges` restricted to the keys strictly after `last` in read order.
pub(super) fn ranges_after(
    ranges: &[ClusteringRange],
    last: &[u8],
    reversed: bool,
) -> Vec<ClusteringRange> {
    ranges
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if reversed {
                let covers = match &r.end {
                    None => true,
                    Some(b) if b.inclusive => last <= &b.prefix[..] || last.starts_with(&b.prefix),
                    Some(b) => last < &b.prefix[..],
                };
                if covers {
                    r.end = Some(ClusteringBound::exclusive(last.to_vec()));
                }
            } else {
                let covers = match &r.start {
                    None => true,
                    Some(b) if b.inclusive => last >= &b.prefix[..],
                    Some(b) => last > &b.prefix[..] && !last.starts_with(&b.prefix),
                };
                if covers {
                    r.start = Some(ClusteringBound::exclusive(last.to_vec()));
                }
            }
            r
        })
        .collect()
}
