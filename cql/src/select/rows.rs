//! Rows as read: the values each selector takes from a row, filters on rows,
//! and aggregate accumulators.
use super::*;

/// One row as the selectors and filters see it.
pub(super) struct RowView<'a> {
    pub(super) table: &'a TableDef,
    pub(super) token: i64,
    pub(super) pk: &'a [Bytes],
    /// Empty for a partition's static-only row.
    pub(super) ck: &'a [Bytes],
    pub(super) statics: Option<&'a LiveRow>,
    pub(super) row: Option<&'a LiveRow>,
}

impl RowView<'_> {
    pub(super) fn live_row(&self, c: &ColumnDef) -> Option<&LiveRow> {
        match c.kind {
            ColumnKind::Static => self.statics,
            _ => self.row,
        }
    }

    pub(super) fn cell(&self, c: &ColumnDef) -> Option<&LiveCell> {
        self.live_row(c)?.cell(c.id)
    }

    /// The wire value of column `i`, `None` when null.
    pub(super) fn value(&self, i: usize) -> Option<Bytes> {
        let c = &self.table.columns[i];
        match c.kind {
            ColumnKind::PartitionKey => self.pk.get(c.position as usize).cloned(),
            ColumnKind::Clustering => self.ck.get(c.position as usize).cloned(),
            _ if c.ty.is_multi_cell() => self
                .live_row(c)
                .and_then(|r| multi_cell_value(&c.ty, r, c.id)),
            _ => self.cell(c).map(|cell| cell.value.clone()),
        }
    }
}

/// Reassembles a non-frozen collection or UDT from its element cells; an
/// empty one is null. Malformed element paths are skipped.
pub(crate) fn multi_cell_value(ty: &CqlType, row: &LiveRow, column: u32) -> Option<Bytes> {
    let elements: Vec<(&Bytes, &LiveCell)> = row.elements(column).collect();
    if elements.is_empty() {
        return None;
    }
    let bytes = match ty {
        CqlType::List { .. } => {
            let values: Vec<Option<&[u8]>> =
                elements.iter().map(|(_, c)| Some(&c.value[..])).collect();
            types::serialize_collection(&values)
        }
        CqlType::Set { elem, .. } => {
            let keys: Vec<Vec<u8>> = elements
                .iter()
                .filter_map(|(p, _)| elem.decode_key(&mut &p[..], false).ok())
                .collect();
            types::serialize_collection(&keys.iter().map(|k| Some(&k[..])).collect::<Vec<_>>())
        }
        CqlType::Map { key, .. } => {
            let pairs: Vec<(Vec<u8>, &[u8])> = elements
                .iter()
                .filter_map(|(p, c)| Some((key.decode_key(&mut &p[..], false).ok()?, &c.value[..])))
                .collect();
            types::serialize_map(&pairs.iter().map(|(k, v)| (&k[..], *v)).collect::<Vec<_>>())
        }
        CqlType::Udt(udt) => {
            let mut fields: Vec<Option<&[u8]>> = vec![None; udt.fields.len()];
            for (path, cell) in &elements {
                let index = <[u8; 2]>::try_from(&path[..]).map(u16::from_be_bytes);
                if let Some(slot) = index.ok().and_then(|i| fields.get_mut(usize::from(i))) {
                    *slot = Some(&cell.value[..]);
                }
            }
            types::serialize_tuple(&fields)
        }
        _ => return None,
    };
    Some(Bytes::from(bytes))
}

/// The clocks selectors read: `ttl()` counts from `secs`, `now()` and
/// friends use `micros`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Now {
    pub(super) secs: i32,
    pub(super) micros: i64,
}

/// The value of a selector over one row; aggregates read `aggs` (the
/// group's results, empty while rows are still being read).
pub(super) fn eval_sel(
    sel: &Sel,
    view: Option<&RowView<'_>>,
    now: Now,
    aggs: &[Option<Bytes>],
) -> Result<Option<Bytes>, CqlError> {
    match sel {
        Sel::Const(v) => Ok(v.clone()),
        Sel::Agg(i) => Ok(aggs.get(*i).cloned().flatten()),
        Sel::Call(f, args) => {
            let values = args
                .iter()
                .map(|a| eval_sel(a, view, now, aggs))
                .collect::<Result<Vec<_>, _>>()?;
            f.apply(&values, now.micros)
        }
        leaf => Ok(view.and_then(|v| leaf_value(leaf, v, now.secs))),
    }
}

/// A copy of `sel` with every value read from the row replaced by that
/// value: what a group keeps of its first row.
pub(super) fn bind_row(sel: &Sel, view: &RowView<'_>, now_secs: i32) -> Sel {
    match sel {
        Sel::Const(_) | Sel::Agg(_) => sel.clone(),
        Sel::Call(f, args) => Sel::Call(
            f.clone(),
            args.iter().map(|a| bind_row(a, view, now_secs)).collect(),
        ),
        leaf => Sel::Const(leaf_value(leaf, view, now_secs)),
    }
}

/// The value of a selector read straight from the row.
pub(super) fn leaf_value(sel: &Sel, view: &RowView<'_>, now_secs: i32) -> Option<Bytes> {
    let columns = &view.table.columns;
    match sel {
        Sel::Column(i) => view.value(*i),
        Sel::Field(i, f) => {
            let c = &columns[*i];
            if c.ty.is_multi_cell() {
                let path = u16::try_from(*f).ok()?.to_be_bytes();
                let row = view.live_row(c)?;
                row.elements(c.id)
                    .find(|(p, _)| p[..] == path)
                    .map(|(_, cell)| cell.value.clone())
            } else {
                let v = view.value(*i)?;
                let fields = types::parse_tuple(&v).ok()?;
                fields
                    .get(*f)
                    .copied()
                    .flatten()
                    .map(Bytes::copy_from_slice)
            }
        }
        Sel::WriteTime(i) => view
            .cell(&columns[*i])
            .map(|c| Bytes::copy_from_slice(&c.timestamp.to_be_bytes())),
        Sel::Ttl(i) => {
            let expiry = view.cell(&columns[*i])?.expiry?;
            let left = expiry.expires_at.saturating_sub(now_secs).max(0);
            Some(Bytes::copy_from_slice(&left.to_be_bytes()))
        }
        Sel::Token => Some(Bytes::copy_from_slice(&view.token.to_be_bytes())),
        Sel::Const(_) | Sel::Call(..) | Sel::Agg(_) => None,
    }
}

// ---------------------------------------------------------------- filters

/// A filter with its values evaluated.
pub(super) struct ResolvedFilter {
    pub(super) columns: Vec<usize>,
    pub(super) op: Operator,
    /// Alternatives (IN) or the one value; tuples for multi-column filters.
    pub(super) values: Vec<Vec<Bytes>>,
}

impl SelectPlan {
    pub(super) fn resolve_filters(
        &self,
        ctx: &EvalContext<'_>,
    ) -> Result<Vec<ResolvedFilter>, CqlError> {
        self.filters
            .iter()
            .map(|f| self.resolve_filter(f, ctx))
            .collect()
    }

    pub(super) fn resolve_filter(
        &self,
        f: &Filter,
        ctx: &EvalContext<'_>,
    ) -> Result<ResolvedFilter, CqlError> {
        let cols: Vec<&ColumnDef> = f.columns.iter().map(|&i| &self.table.columns[i]).collect();
        let multi = f.tuple;
        let (ty, what) = if multi {
            tuple_type(&cols, true)
        } else {
            let c = cols[0];
            let ty = match f.op {
                Operator::Contains => element_type(&c.ty).unwrap_or_else(|| c.ty.clone()),
                Operator::ContainsKey => match &c.ty {
                    CqlType::Map { key, .. } => (**key).clone(),
                    other => other.clone(),
                },
                _ => c.ty.clone(),
            };
            (ty, format!("column {}", c.name))
        };
        let plan = match &f.value {
            FilterValue::Term(t) => ValuesPlan::Eq(t.clone()),
            FilterValue::In(v) => ValuesPlan::In(v.clone()),
        };
        let values = eval_values(&plan, &ty, ctx, &what).map_err(|e| match e {
            // Filters word a null as Cassandra does; unset and other errors stay as they are.
            CqlError::Invalid(m) if m.starts_with("Invalid null value") => {
                invalid(format!("Unsupported null value for {what}"))
            }
            other => other,
        })?;
        let values = values
            .into_iter()
            .map(|v| {
                if multi {
                    tuple_parts(&v, cols.len(), &what)
                } else {
                    Ok(vec![v])
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolvedFilter {
            columns: f.columns.clone(),
            op: f.op,
            values,
        })
    }
}

impl ResolvedFilter {
    pub(super) fn matches(&self, view: &RowView<'_>) -> bool {
        let columns = &view.table.columns;
        let mut actual = Vec::with_capacity(self.columns.len());
        for &i in &self.columns {
            match view.value(i) {
                Some(v) => actual.push(v),
                None => return false,
            }
        }
        let types: Vec<&CqlType> = self.columns.iter().map(|&i| &columns[i].ty).collect();
        match self.op {
            Operator::Contains | Operator::ContainsKey => {
                let ty = types[0];
                let Some(needle) = self.values.first().and_then(|v| v.first()) else {
                    return false;
                };
                contains(ty, &actual[0], needle, self.op == Operator::ContainsKey)
            }
            op => self.values.iter().any(|value| {
                let ord = compare_tuples(&actual, value, types.iter().copied());
                match op {
                    Operator::Eq => ord == Ordering::Equal,
                    Operator::Neq => ord != Ordering::Equal,
                    Operator::Lt => ord == Ordering::Less,
                    Operator::Lte => ord != Ordering::Greater,
                    Operator::Gt => ord == Ordering::Greater,
                    Operator::Gte => ord != Ordering::Less,
                    _ => false,
                }
            }),
        }
    }
}

/// Whether collection `value` of `ty` holds `needle` (as a map key when `key`).
pub(super) fn contains(ty: &CqlType, value: &[u8], needle: &[u8], key: bool) -> bool {
    match ty {
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => types::parse_collection(value)
            .map(|items| {
                items
                    .iter()
                    .any(|e| elem.compare(e, needle) == Ordering::Equal)
            })
            .unwrap_or(false),
        CqlType::Map {
            key: kt, value: vt, ..
        } => types::parse_map(value)
            .map(|pairs| {
                pairs.iter().any(|(k, v)| {
                    if key {
                        kt.compare(k, needle) == Ordering::Equal
                    } else {
                        vt.compare(v, needle) == Ordering::Equal
                    }
                })
            })
            .unwrap_or(false),
        _ => false,
    }
}

// ---------------------------------------------------------------- aggregates

/// How sum/avg read a numeric type: (width, float).
pub(super) fn numeric_kind(ty: &CqlType) -> Option<(usize, bool)> {
    match ty {
        CqlType::Tinyint => Some((1, false)),
        CqlType::Smallint => Some((2, false)),
        CqlType::Int => Some((4, false)),
        CqlType::Bigint | CqlType::Counter => Some((8, false)),
        CqlType::Float => Some((4, true)),
        CqlType::Double => Some((8, true)),
        _ => None,
    }
}

/// One aggregate's running state over the rows of a group.
#[derive(Debug, Clone, Default)]
pub(super) struct Accumulator {
    pub(super) count: i64,
    pub(super) int_sum: i128,
    pub(super) float_sum: f64,
    pub(super) best: Option<Bytes>,
}

impl Accumulator {
    pub(super) fn add(
        &mut self,
        spec: &AggSpec,
        view: &RowView<'_>,
        now: Now,
    ) -> Result<(), CqlError> {
        let Some((arg, arg_ty)) = &spec.arg else {
            self.count += 1;
            return Ok(());
        };
        let Some(v) = eval_sel(arg, Some(view), now, &[])?.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        self.count += 1;
        match spec.kind {
            AggKind::Count => {}
            AggKind::Min | AggKind::Max => {
                let better = self.best.as_ref().is_none_or(|b| {
                    let ord = arg_ty.compare(&v, b);
                    if spec.kind == AggKind::Min {
                        ord == Ordering::Less
                    } else {
                        ord == Ordering::Greater
                    }
                });
                if better {
                    self.best = Some(v);
                }
            }
            AggKind::Sum | AggKind::Avg => match numeric_kind(arg_ty) {
                Some((_, true)) => self.float_sum += read_float(&v),
                Some((_, false)) => self.int_sum += read_int(&v),
                None => {}
            },
        }
        Ok(())
    }

    pub(super) fn result(&self, spec: &AggSpec) -> Option<Bytes> {
        match spec.kind {
            AggKind::Count => Some(Bytes::copy_from_slice(&self.count.to_be_bytes())),
            AggKind::Min | AggKind::Max => self.best.clone(),
            AggKind::Sum | AggKind::Avg => {
                let (width, float) = numeric_kind(&spec.ty)?;
                let n = if spec.kind == AggKind::Avg {
                    self.count.max(1)
                } else {
                    1
                };
                Some(if float {
                    write_float(self.float_sum / n as f64, width)
                } else {
                    write_int(self.int_sum / i128::from(n), width)
                })
            }
        }
    }
}

/// The group being folded: its key, its aggregates and its first row.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) key: Vec<Bytes>,
    pub(super) accumulators: Vec<Accumulator>,
    pub(super) first_row: Vec<Sel>,
}

pub(super) fn read_int(v: &[u8]) -> i128 {
    let mut n: i128 = if v.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in v {
        n = (n << 8) | i128::from(*b);
    }
    n
}

pub(super) fn read_float(v: &[u8]) -> f64 {
    match v.len() {
        4 => f64::from(f32::from_be_bytes(v.try_into().unwrap_or_default())),
        8 => f64::from_be_bytes(v.try_into().unwrap_or_default()),
        _ => 0.0,
    }
}

pub(super) fn write_int(n: i128, width: usize) -> Bytes {
    // Sums wrap at the column type's width, as the type's own arithmetic does.
    let bytes = n.to_be_bytes();
    Bytes::copy_from_slice(&bytes[16 - width..])
}

pub(super) fn write_float(x: f64, width: usize) -> Bytes {
    if width == 4 {
        Bytes::copy_from_slice(&(x as f32).to_be_bytes())
    } else {
        Bytes::copy_from_slice(&x.to_be_bytes())
    }
}
