//! Executing a plan: reading storage in bounded chunks and emitting rows
//! page by page.
use super::*;

/// What the reader should do after handing rows to the emitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Read more of this partition.
    More,
    NextPartition,
    /// The page is full or the limit reached.
    Stop,
}

/// The rows buffer a page starts with: a point read's row fits without regrowing.
const ROWS_BUFFER_START_BYTES: usize = 256;

/// Turns the rows read into result rows, counting them against the limits.
pub(super) struct Emitter<'p> {
    pub(super) plan: &'p SelectPlan,
    pub(super) filters: Vec<ResolvedFilter>,
    pub(super) now: Now,
    pub(super) writer: RowsWriter,
    pub(super) page_left: usize,
    pub(super) limit_left: usize,
    pub(super) per_partition: usize,
    pub(super) emitted: u64,
    pub(super) current: Option<DecoratedKey>,
    pub(super) pk: Vec<Bytes>,
    pub(super) in_partition: usize,
    pub(super) had_rows: bool,
    /// The paging position after the last row returned.
    pub(super) last: Option<(DecoratedKey, Option<Bytes>)>,
    pub(super) page_full: bool,
    /// The group being folded (aggregates and GROUP BY).
    pub(super) group: Option<Group>,
    /// Groups still allowed by LIMIT.
    pub(super) groups_left: usize,
    /// Rows held for the in-memory ORDER BY across partitions.
    pub(super) sorted: Option<Vec<(Bytes, Vec<Option<Bytes>>)>>,
}

impl<'p> Emitter<'p> {
    pub(super) fn new(
        plan: &'p SelectPlan,
        ctx: &EvalContext<'_>,
        page_size: Option<usize>,
        state: Option<&PagingState>,
        now_secs: i32,
        sort_rows: bool,
    ) -> Result<Self, CqlError> {
        let limit = evaluate_limit(&plan.limit, "LIMIT", ctx)?;
        let per_partition = evaluate_limit(&plan.per_partition_limit, "PER PARTITION LIMIT", ctx)?;
        let emitted = state.map_or(0, |s| s.emitted);
        let sort_rows = sort_rows && !plan.aggregate;
        let unbounded = plan.aggregate || sort_rows;
        Ok(Emitter {
            plan,
            filters: plan.resolve_filters(ctx)?,
            now: Now {
                secs: now_secs,
                micros: ctx.now_micros,
            },
            writer: RowsWriter::with_capacity(
                if plan.json { 1 } else { plan.outputs.len() },
                ROWS_BUFFER_START_BYTES,
            ),
            page_left: if unbounded {
                usize::MAX
            } else {
                page_size.unwrap_or(usize::MAX)
            },
            limit_left: if unbounded {
                usize::MAX
            } else {
                limit.saturating_sub(usize::try_from(emitted).unwrap_or(usize::MAX))
            },
            per_partition,
            emitted,
            current: None,
            pk: Vec::new(),
            in_partition: 0,
            had_rows: false,
            last: None,
            page_full: false,
            group: None,
            groups_left: limit,
            sorted: sort_rows.then(Vec::new),
        })
    }

    /// Rows worth asking storage for at once.
    pub(super) fn chunk_rows(&self) -> usize {
        if self.filters.is_empty() && !self.plan.aggregate && self.sorted.is_none() {
            self.page_left
                .min(self.limit_left)
                .min(self.per_partition)
                .clamp(1, CHUNK_ROWS)
        } else {
            CHUNK_ROWS
        }
    }

    pub(super) fn enter(&mut self, key: &DecoratedKey) -> Result<(), CqlError> {
        if self.current.as_ref() == Some(key) {
            return Ok(());
        }
        let count = self.plan.table.partition_key_len();
        self.pk =
            split_partition_key(&key.key, count).map_err(|e| CqlError::Server(e.to_string()))?;
        self.current = Some(key.clone());
        self.in_partition = 0;
        self.had_rows = false;
        Ok(())
    }

    /// Continues inside `key` after a page boundary.
    pub(super) fn resume(&mut self, key: &DecoratedKey, in_partition: u64) -> Result<(), CqlError> {
        self.enter(key)?;
        self.in_partition = usize::try_from(in_partition).unwrap_or(usize::MAX);
        self.had_rows = true;
        Ok(())
    }

    /// Takes a chunk of `key`'s rows in read order; `complete` when no more
    /// rows of the partition follow.
    pub(super) fn chunk(
        &mut self,
        key: &DecoratedKey,
        statics: Option<&LiveRow>,
        rows: &[(Bytes, LiveRow)],
        complete: bool,
    ) -> Result<Flow, CqlError> {
        self.enter(key)?;
        let types = self.plan.table.clustering_types();
        for (ck_bytes, row) in rows {
            self.had_rows = true;
            let ck: Vec<Bytes> = types::decode_clustering(&types, ck_bytes)
                .map_err(|e| CqlError::Server(format!("stored clustering key: {e}")))?
                .into_iter()
                .map(Bytes::from)
                .collect();
            let pk = std::mem::take(&mut self.pk);
            let flow = self.offer(key, &pk, &ck, Some(ck_bytes), statics, Some(row));
            self.pk = pk;
            if let Some(flow) = flow? {
                return Ok(flow);
            }
        }
        if !complete {
            return Ok(Flow::More);
        }
        if !self.had_rows && statics.is_some() && self.plan.clustering.is_empty() {
            let pk = std::mem::take(&mut self.pk);
            let flow = self.offer(key, &pk, &[], None, statics, None);
            self.pk = pk;
            if let Some(flow) = flow? {
                return Ok(flow);
            }
        }
        Ok(Flow::NextPartition)
    }

    /// Filters, then emits one row; returns a flow when reading should not simply go on.
    pub(super) fn offer(
        &mut self,
        key: &DecoratedKey,
        pk: &[Bytes],
        ck: &[Bytes],
        ck_bytes: Option<&Bytes>,
        statics: Option<&LiveRow>,
        row: Option<&LiveRow>,
    ) -> Result<Option<Flow>, CqlError> {
        let view = RowView {
            table: &self.plan.table,
            token: key.token,
            pk,
            ck,
            statics,
            row,
        };
        if !self.filters.iter().all(|f| f.matches(&view)) {
            return Ok(None);
        }
        if let Some(flow) = self.emit(&view, ck_bytes)? {
            return Ok(Some(flow));
        }
        self.emitted += 1;
        self.in_partition += 1;
        self.limit_left = self.limit_left.saturating_sub(1);
        self.page_left = self.page_left.saturating_sub(1);
        let partition_done =
            self.in_partition >= self.per_partition || ck_bytes.is_none() || self.plan.distinct;
        let position = if partition_done {
            None
        } else {
            ck_bytes.cloned()
        };
        self.last = Some((key.clone(), position));
        if self.limit_left == 0 {
            return Ok(Some(Flow::Stop));
        }
        if self.page_left == 0 {
            self.page_full = true;
            return Ok(Some(Flow::Stop));
        }
        Ok(partition_done.then_some(Flow::NextPartition))
    }

    pub(super) fn emit(
        &mut self,
        view: &RowView<'_>,
        ck_bytes: Option<&Bytes>,
    ) -> Result<Option<Flow>, CqlError> {
        if self.plan.aggregate {
            return self.fold(view);
        }
        let values = self
            .plan
            .outputs
            .iter()
            .map(|o| eval_sel(&o.sel, Some(view), self.now, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let values = self.plan.finish_row(values);
        match &mut self.sorted {
            Some(sorted) => sorted.push((ck_bytes.cloned().unwrap_or_default(), values)),
            None => write_row(&mut self.writer, &values),
        }
        Ok(None)
    }

    /// Adds a row to its group, closing the previous group when the row
    /// starts a new one.
    pub(super) fn fold(&mut self, view: &RowView<'_>) -> Result<Option<Flow>, CqlError> {
        let key: Vec<Bytes> = match self.plan.group_width {
            Some(width) => view.pk.iter().chain(view.ck).take(width).cloned().collect(),
            None => Vec::new(),
        };
        if self.group.as_ref().is_some_and(|g| g.key != key) {
            self.flush_group()?;
            if self.groups_left == 0 {
                return Ok(Some(Flow::Stop));
            }
        }
        let now = self.now;
        let plan = self.plan;
        let group = self.group.get_or_insert_with(|| Group {
            key,
            accumulators: vec![Accumulator::default(); plan.aggregates.len()],
            first_row: plan
                .outputs
                .iter()
                .map(|o| bind_row(&o.sel, view, now.secs))
                .collect(),
        });
        for (acc, spec) in group.accumulators.iter_mut().zip(&plan.aggregates) {
            acc.add(spec, view, now)?;
        }
        Ok(None)
    }

    /// Writes the open group's row.
    pub(super) fn flush_group(&mut self) -> Result<(), CqlError> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let aggs: Vec<Option<Bytes>> = group
            .accumulators
            .iter()
            .zip(&self.plan.aggregates)
            .map(|(a, spec)| a.result(spec))
            .collect();
        let values = group
            .first_row
            .iter()
            .map(|sel| eval_sel(sel, None, self.now, &aggs))
            .collect::<Result<Vec<_>, _>>()?;
        write_row(&mut self.writer, &self.plan.finish_row(values));
        self.groups_left = self.groups_left.saturating_sub(1);
        Ok(())
    }

    pub(super) fn finish(mut self, limit: usize) -> Result<Rows, CqlError> {
        if self.plan.aggregate {
            if self.group.is_none() && self.plan.group_width.is_none() {
                // An aggregate over no rows still answers one row (count 0).
                self.group = Some(Group {
                    key: Vec::new(),
                    accumulators: vec![Accumulator::default(); self.plan.aggregates.len()],
                    first_row: self.plan.outputs.iter().map(|o| o.sel.clone()).collect(),
                });
            }
            if self.groups_left > 0 {
                self.flush_group()?;
            }
        }
        if let Some(mut sorted) = self.sorted.take() {
            // Stable: rows of one clustering key keep their partition order.
            sorted.sort_by(|a, b| {
                if self.plan.reversed {
                    b.0.cmp(&a.0)
                } else {
                    a.0.cmp(&b.0)
                }
            });
            for (_, values) in sorted.iter().take(limit) {
                write_row(&mut self.writer, values);
            }
        }
        let paging_state = match (&self.last, self.page_full && self.limit_left > 0) {
            (Some((key, clustering)), true) => Some(
                PagingState {
                    key: key.clone(),
                    clustering: clustering.clone(),
                    emitted: self.emitted,
                    in_partition: u64::try_from(self.in_partition).unwrap_or(u64::MAX),
                }
                .encode(),
            ),
            _ => None,
        };
        let metadata = ResultMetadata {
            columns: self.plan.result_columns().clone(),
            paging_state,
            no_metadata: false,
        };
        self.writer
            .finish(metadata)
            .map_err(|e| CqlError::Server(e.to_string()))
    }
}

pub(super) fn write_row(writer: &mut RowsWriter, values: &[Option<Bytes>]) {
    for v in values {
        writer.push_value(v.as_deref());
    }
    writer.end_row();
}

// ---------------------------------------------------------------- reading

impl DataSource<'_> {
    pub(super) async fn read(
        &self,
        table: &TableDef,
        key: &DecoratedKey,
        slice: SliceQuery,
        now_secs: i32,
    ) -> Result<Option<PartitionResult>, CqlError> {
        match self {
            DataSource::Proxy(proxy) => Ok(proxy
                .read_partition(table.id, key.clone(), slice, now_secs)
                .await?),
            // Boxed: virtual tables are rare and their futures large.
            DataSource::Local(t) => Box::pin(t.read_partition(key, &slice, now_secs))
                .await
                .map_err(|e| CqlError::Server(e.to_string())),
        }
    }

    pub(super) async fn scan(
        &self,
        table: &TableDef,
        range: &PartitionRange,
        slice: SliceQuery,
        now_secs: i32,
    ) -> Result<Vec<PartitionResult>, CqlError> {
        match self {
            DataSource::Proxy(proxy) => Ok(proxy
                .scan(table.id, range.clone(), slice, SCAN_PARTITIONS, now_secs)
                .await?),
            DataSource::Local(t) => Box::pin(t.scan(range, &slice, SCAN_PARTITIONS, now_secs))
                .await
                .map_err(|e| CqlError::Server(e.to_string())),
        }
    }
}

/// One execution: the plan, its resolved slices and where rows come from.
pub(super) struct Reader<'a> {
    pub(super) plan: &'a SelectPlan,
    pub(super) source: DataSource<'a>,
    pub(super) ranges: Vec<ClusteringRange>,
    pub(super) now_secs: i32,
}

impl Reader<'_> {
    pub(super) fn slice(&self, after: Option<&Bytes>, row_limit: usize) -> SliceQuery {
        SliceQuery {
            ranges: match after {
                Some(ck) => ranges_after(&self.ranges, ck, self.plan.reversed),
                None => self.ranges.clone(),
            },
            reversed: self.plan.reversed,
            row_limit,
            columns: None,
        }
    }

    /// Reads `key` from after `after` (or its start) until the partition ends
    /// or the emitter stops.
    pub(super) async fn read_partition(
        &self,
        em: &mut Emitter<'_>,
        key: &DecoratedKey,
        mut after: Option<Bytes>,
    ) -> Result<Flow, CqlError> {
        loop {
            let slice = self.slice(after.as_ref(), em.chunk_rows());
            let row_limit = slice.row_limit;
            let Some(result) = self
                .source
                .read(&self.plan.table, key, slice, self.now_secs)
                .await?
            else {
                return Ok(Flow::NextPartition);
            };
            let complete = result.rows.len() < row_limit;
            let flow = em.chunk(
                &result.key,
                result.static_row.as_ref(),
                &result.rows,
                complete,
            )?;
            match (flow, result.rows.last()) {
                (Flow::More, Some((ck, _))) => after = Some(ck.clone()),
                (Flow::More, None) => return Ok(Flow::NextPartition),
                (other, _) => return Ok(other),
            }
        }
    }

    pub(super) async fn read_keys(
        &self,
        em: &mut Emitter<'_>,
        keys: &[DecoratedKey],
        state: Option<&PagingState>,
    ) -> Result<(), CqlError> {
        let mut start = 0;
        if let Some(state) = state {
            let i = keys
                .iter()
                .position(|k| *k == state.key)
                .ok_or_else(|| invalid("Invalid value for the paging state"))?;
            if let Some(ck) = &state.clustering {
                em.resume(&keys[i], state.in_partition)?;
                if self.read_partition(em, &keys[i], Some(ck.clone())).await? == Flow::Stop {
                    return Ok(());
                }
            }
            start = i + 1;
        }
        for key in &keys[start..] {
            if self.read_partition(em, key, None).await? == Flow::Stop {
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) async fn read_range(
        &self,
        em: &mut Emitter<'_>,
        mut range: PartitionRange,
        state: Option<&PagingState>,
    ) -> Result<(), CqlError> {
        if let Some(state) = state {
            if let Some(ck) = &state.clustering {
                em.resume(&state.key, state.in_partition)?;
                if self
                    .read_partition(em, &state.key, Some(ck.clone()))
                    .await?
                    == Flow::Stop
                {
                    return Ok(());
                }
            }
            range.start = Bound::Excluded(RingPosition::key(&state.key));
        }
        loop {
            let slice = self.slice(None, em.chunk_rows());
            let parts = self
                .source
                .scan(&self.plan.table, &range, slice.clone(), self.now_secs)
                .await?;
            let Some(last) = parts.last() else {
                return Ok(());
            };
            let counted: usize = parts.iter().map(|p| p.counted_rows(&slice)).sum();
            let truncated = counted >= slice.row_limit;
            for (i, p) in parts.iter().enumerate() {
                let complete = !(i + 1 == parts.len() && truncated && !p.rows.is_empty());
                let flow = match em.chunk(&p.key, p.static_row.as_ref(), &p.rows, complete)? {
                    Flow::More => {
                        let after = p.rows.last().map(|(ck, _)| ck.clone());
                        self.read_partition(em, &p.key, after).await?
                    }
                    other => other,
                };
                if flow == Flow::Stop {
                    return Ok(());
                }
            }
            if parts.len() < SCAN_PARTITIONS && !truncated {
                return Ok(());
            }
            range.start = Bound::Excluded(RingPosition::key(&last.key));
        }
    }
}

/// Executes `plan` with the bound values in `ctx`, returning one page.
pub async fn execute_select(
    plan: &SelectPlan,
    source: DataSource<'_>,
    ctx: &EvalContext<'_>,
    page: &PageOptions,
    now_secs: i32,
) -> Result<Rows, CqlError> {
    let page_size = page.page_size.filter(|&n| n > 0);
    let state = match page.paging_state.as_deref() {
        Some(bytes) if !bytes.is_empty() => Some(PagingState::decode(bytes)?),
        _ => None,
    };
    let limit = evaluate_limit(&plan.limit, "LIMIT", ctx)?;
    let partitions = plan.resolve_partitions(ctx)?;
    let sort_rows = plan.sort_across_partitions
        && matches!(&partitions, Partitions::Keys(keys) if keys.len() > 1);
    if sort_rows && page_size.is_some() && !plan.aggregate {
        return Err(invalid("Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query"));
    }
    let mut em = Emitter::new(plan, ctx, page_size, state.as_ref(), now_secs, sort_rows)?;
    let reader = Reader {
        plan,
        source,
        ranges: plan.resolve_ranges(ctx)?,
        now_secs,
    };
    if !reader.ranges.is_empty() {
        match partitions {
            Partitions::Keys(keys) => reader.read_keys(&mut em, &keys, state.as_ref()).await?,
            // Boxed: a scan's future is large, and a point read's future
            // would otherwise carry its room (it is copied once per request).
            Partitions::Range(range) => {
                Box::pin(reader.read_range(&mut em, range, state.as_ref())).await?
            }
            Partitions::Empty => {}
        }
    }
    em.finish(limit)
}
