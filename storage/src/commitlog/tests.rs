//! Commitlog tests on the real disk (under `target/`, not tmpfs, so direct
//! IO is exercised), each inside a one-shard glommio executor.
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::test_support::on_shard;

const BLOCK: u64 = 4096;
/// Small segments (16 blocks) so tests cross segment boundaries.
const SEGMENT: u64 = 16 * BLOCK;

fn test_dir(name: &str) -> PathBuf {
    crate::test_support::test_dir("commitlog-tests", name)
}

fn config(sync: SyncMode) -> Config {
    Config {
        segment_bytes: SEGMENT,
        sync,
        total_space_bytes: 64 * SEGMENT,
    }
}

fn payload(i: usize) -> Vec<u8> {
    let len = (i * 389) % 9000;
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

async fn open(dir: &Path, sync: SyncMode) -> (Commitlog, Replay) {
    Commitlog::open(dir, 0, config(sync)).await.expect("open")
}

fn payloads(replay: &Replay) -> Vec<Vec<u8>> {
    replay.entries.iter().map(|e| e.payload.clone()).collect()
}

#[test]
fn appended_entries_replay_in_order_across_segments_and_restarts() {
    let dir = test_dir("round_trip");
    let (first, second, stats) = on_shard(move || async move {
        let (log, replay) = open(&dir, SyncMode::Periodic(DEFAULT_SYNC_PERIOD)).await;
        assert!(replay.entries.is_empty());
        let mut positions = Vec::new();
        for i in 0..60 {
            positions.push(log.append(&payload(i)).await.expect("append"));
        }
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        log.close().await.expect("close");
        let (log, first) = open(&dir, SyncMode::Batch).await;
        let replayed: Vec<ReplayPosition> = first.entries.iter().map(|e| e.position).collect();
        assert_eq!(replayed, positions);
        for i in 60..70 {
            log.append(&payload(i)).await.expect("append");
        }
        log.close().await.expect("close");
        let (log, second) = open(&dir, SyncMode::Batch).await;
        let stats = log.stats();
        log.close().await.expect("close");
        (payloads(&first), payloads(&second), (second.stats, stats))
    });
    let expected: Vec<Vec<u8>> = (0..60).map(payload).collect();
    assert_eq!(first, expected);
    let expected: Vec<Vec<u8>> = (0..70).map(payload).collect();
    assert_eq!(second, expected);
    let (replay_stats, _) = stats;
    assert!(replay_stats.segments_replayed >= 5, "{replay_stats:?}");
    assert_eq!(replay_stats.entries_replayed, 70);
    assert_eq!(
        (
            replay_stats.corrupt_blocks,
            replay_stats.corrupt_entries,
            replay_stats.torn_blocks
        ),
        (0, 0, 0)
    );
}

/// Writes 12 synced single-entry batches, then one batch of three entries
/// in one block; returns the last segment's path, the last block's offset,
/// and the payloads.
fn write_log_with_tail(dir: &Path) -> (PathBuf, u64, Vec<Vec<u8>>) {
    let dir = dir.to_path_buf();
    on_shard(move || async move {
        let (log, _) = open(&dir, SyncMode::Batch).await;
        let mut written = Vec::new();
        for i in 0..12 {
            let entry = vec![i as u8; 700];
            log.append(&entry).await.expect("append");
            written.push(entry);
        }
        let log = Rc::new(log);
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                let entry = vec![100 + i as u8; 900];
                written.push(entry.clone());
                scheduler::spawn_local_task(async move { log.append(&entry).await })
            })
            .collect();
        let mut last = None;
        for task in tasks {
            last = Some(task.await.expect("append"));
        }
        let last = last.expect("three appends");
        Rc::into_inner(log)
            .expect("tasks done")
            .close()
            .await
            .expect("close");
        let path = segment::path(&dir, 0, last.segment_id);
        (path, last.offset / BLOCK * BLOCK, written)
    })
}

fn replay_only(dir: &Path) -> (Vec<Vec<u8>>, ReplayStats) {
    let dir = dir.to_path_buf();
    on_shard(move || async move {
        let mut seen = Vec::new();
        let mut apply = |_: ReplayPosition, payload: &[u8]| seen.push(payload.to_vec());
        let replayed = replay::replay_directory(&dir, 0, &mut apply)
            .await
            .expect("replay");
        (seen, replayed.stats)
    })
}

#[test]
fn a_torn_last_block_at_any_byte_loses_only_its_entries_silently() {
    let dir = test_dir("torn_tail");
    let (path, block_start, written) = write_log_with_tail(&dir);
    let original = std::fs::read(&path).expect("read segment");
    let start = block_start as usize;
    // Both tears are replayed in one shard run per offset batch, for speed.
    let offsets: Vec<usize> = (0..=BLOCK as usize).collect();
    for chunk in offsets.chunks(512) {
        for &torn_at in chunk {
            let mut zeroed = original.clone();
            zeroed[start + torn_at..start + BLOCK as usize].fill(0);
            std::fs::write(&path, &zeroed).expect("write torn copy");
            check_torn(&dir, torn_at, &written);
        }
        let torn_at = chunk[chunk.len() / 2];
        std::fs::write(&path, &original[..start + torn_at]).expect("write truncated copy");
        check_torn(&dir, torn_at, &written);
    }
}

fn check_torn(dir: &Path, torn_at: usize, written: &[Vec<u8>]) {
    let (seen, stats) = replay_only(dir);
    // The block's bytes past its three entries are zero padding anyway.
    let block_end = format::BLOCK_HEADER_BYTES + 3 * (format::FRAME_HEADER_BYTES + 900);
    let survivors = if torn_at >= block_end { 15 } else { 12 };
    assert_eq!(seen, written[..survivors], "torn at {torn_at}");
    assert_eq!(
        (stats.corrupt_blocks, stats.corrupt_entries),
        (0, 0),
        "torn at {torn_at}: {stats:?}"
    );
}

#[test]
fn bit_flips_in_synced_blocks_lose_only_that_block_and_are_counted() {
    let dir = test_dir("bit_flips");
    let mut positions = Vec::new();
    let written: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 1000 + i]).collect();
    let to_write = written.clone();
    let dir_for_write = dir.clone();
    positions.extend(on_shard(move || async move {
        let (log, _) = open(&dir_for_write, SyncMode::Batch).await;
        let mut positions = Vec::new();
        for entry in &to_write {
            positions.push(log.append(entry).await.expect("append"));
        }
        log.close().await.expect("close");
        positions
    }));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for victim in [3_usize, 10, 14, 21, 30, 38] {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let position = positions[victim];
        let path = segment::path(&dir, 0, position.segment_id);
        let original = std::fs::read(&path).expect("read");
        let block = (position.offset / BLOCK * BLOCK) as usize;
        let bit = (seed >> 33) as usize % (BLOCK as usize * 8);
        let mut damaged = original.clone();
        damaged[block + bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &damaged).expect("write damaged");
        let (seen, stats) = replay_only(&dir);
        std::fs::write(&path, &original).expect("restore");
        let mut expected = written.clone();
        expected.remove(victim);
        assert_eq!(seen, expected, "flip in entry {victim}'s block, bit {bit}");
        assert_eq!(stats.corrupt_blocks, 1, "entry {victim}: {stats:?}");
    }
}

#[test]
fn files_that_are_not_our_segments_are_left_alone() {
    let dir = test_dir("foreign");
    std::fs::write(dir.join("notes.txt"), b"hello").expect("write");
    std::fs::write(dir.join("CommitLog-7-1.log"), b"other shard").expect("write");
    std::fs::create_dir_all(dir.join("subdir")).expect("mkdir");
    std::fs::write(dir.join("CommitLog-0-99.log"), vec![7_u8; 8192]).expect("write");
    let dir_for_shard = dir.clone();
    let stats = on_shard(move || async move {
        let (log, replay) = open(&dir_for_shard, SyncMode::Batch).await;
        log.append(b"x").await.expect("append");
        log.discard_before(ReplayPosition {
            segment_id: u64::MAX,
            offset: 0,
        });
        log.sync().await.expect("sync");
        log.close().await.expect("close");
        replay.stats
    });
    assert_eq!(stats.ignored_files, 2);
    assert_eq!(stats.unreadable_segments, 1);
    assert_eq!(
        std::fs::read(dir.join("notes.txt")).expect("kept"),
        b"hello"
    );
    assert_eq!(
        std::fs::read(dir.join("CommitLog-7-1.log")).expect("kept"),
        b"other shard"
    );
    assert_eq!(
        std::fs::read(dir.join("CommitLog-0-99.log")).expect("kept"),
        vec![7_u8; 8192]
    );
}

#[test]
fn concurrent_batch_appends_share_syncs() {
    let dir = test_dir("group_commit");
    let (stats, count) = on_shard(move || async move {
        let (log, _) = open(&dir, SyncMode::Batch).await;
        let log = Rc::new(log);
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let log = log.clone();
                scheduler::spawn_local_task(async move { log.append(&payload(i % 7)).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("append");
        }
        let stats = log.stats();
        let log = Rc::into_inner(log).expect("tasks done");
        log.close().await.expect("close");
        let (log, replay) = open(&dir, SyncMode::Batch).await;
        log.close().await.expect("close");
        (stats, replay.entries.len())
    });
    assert_eq!(count, 64);
    assert_eq!(stats.appends, 64);
    assert!(
        stats.syncs <= 4,
        "64 concurrent appends took {} syncs",
        stats.syncs
    );
}

#[test]
fn discarded_segments_are_recycled_or_deleted_and_not_replayed() {
    let dir = test_dir("discard");
    let dir_for_shard = dir.clone();
    let (stats, replayed, kept_from) = on_shard(move || async move {
        let (log, _) = open(&dir_for_shard, SyncMode::Periodic(DEFAULT_SYNC_PERIOD)).await;
        let mut positions = Vec::new();
        for i in 0..80 {
            positions.push(log.append(&payload(i)).await.expect("append"));
        }
        log.sync().await.expect("sync");
        let keep_from = positions[70];
        log.discard_before(keep_from);
        for _ in 0..200 {
            log.sync().await.expect("sync");
            let stats = log.stats();
            if stats.segments_recycled + stats.segments_deleted >= keep_from.segment_id - 1 {
                break;
            }
            scheduler::sleep(Duration::from_millis(5)).await;
        }
        let stats = log.stats();
        log.close().await.expect("close");
        let (log, replay) = open(&dir_for_shard, SyncMode::Batch).await;
        log.close().await.expect("close");
        let first_kept = positions
            .iter()
            .position(|p| p.segment_id == keep_from.segment_id);
        (stats, payloads(&replay), first_kept.expect("kept"))
    });
    assert!(stats.segments_recycled >= 1, "{stats:?}");
    let expected: Vec<Vec<u8>> = (kept_from..80).map(payload).collect();
    assert_eq!(replayed, expected);
    let segments = std::fs::read_dir(&dir)
        .expect("list")
        .filter(|e| {
            let name = e.as_ref().expect("entry").file_name();
            segment::parse_name(&name.to_string_lossy()).is_some()
        })
        .count();
    assert!(segments <= 8, "{segments} segment files left");
}

#[test]
fn a_failed_sync_poisons_until_restart() {
    let dir = test_dir("poison");
    let dir_for_shard = dir.clone();
    let replayed = on_shard(move || async move {
        let (log, _) = open(&dir_for_shard, SyncMode::Batch).await;
        log.append(b"durable").await.expect("append");
        log.inject_sync_failures(1);
        let failed = log.append(b"unsynced").await;
        assert!(
            matches!(failed, Err(CommitlogError::Poisoned { .. })),
            "{failed:?}"
        );
        assert!(log.is_poisoned());
        let later = log.append(b"refused").await;
        assert!(
            matches!(later, Err(CommitlogError::Poisoned { .. })),
            "{later:?}"
        );
        assert!(log.close().await.is_err());
        let (log, replay) = open(&dir_for_shard, SyncMode::Batch).await;
        log.append(b"after restart").await.expect("append");
        log.close().await.expect("close");
        payloads(&replay)
    });
    // The unsynced entry was written before its sync failed: replay may see it.
    assert_eq!(replayed[0], b"durable");
    assert!(!replayed.iter().any(|p| p == b"refused"));
}

#[test]
fn periodic_mode_syncs_on_its_period_and_space_pressure_is_signalled() {
    let dir = test_dir("periodic");
    let (syncs, signals, callback_calls) = on_shard(move || async move {
        let mut config = config(SyncMode::Periodic(Duration::from_millis(30)));
        config.total_space_bytes = 3 * SEGMENT;
        let (log, _) = Commitlog::open(&dir, 0, config).await.expect("open");
        let calls = Rc::new(Cell::new(0_u32));
        let seen = calls.clone();
        log.set_space_pressure_callback(Rc::new(move |_| seen.set(seen.get() + 1)));
        log.append(b"one").await.expect("append");
        scheduler::sleep(Duration::from_millis(150)).await;
        let syncs = log.stats().syncs;
        for i in 0..40 {
            log.append(&payload(i)).await.expect("append");
        }
        assert!(log.space_pressure().is_some());
        let stats = log.stats();
        log.close().await.expect("close");
        (syncs, stats.space_pressure_signals, calls.get())
    });
    assert!(syncs >= 1);
    assert!(signals >= 1);
    assert_eq!(u64::from(callback_calls), signals);
}

#[test]
fn oversized_entries_and_bad_configs_are_refused() {
    let dir = test_dir("limits");
    on_shard(move || async move {
        let (log, _) = open(&dir, SyncMode::Batch).await;
        let too_big = vec![0_u8; SEGMENT as usize];
        assert!(matches!(
            log.append(&too_big).await,
            Err(CommitlogError::EntryTooLarge { .. })
        ));
        log.close().await.expect("close");
        let bad = Config {
            segment_bytes: 5000,
            ..Config::default()
        };
        assert!(matches!(
            Commitlog::open(&dir, 0, bad).await,
            Err(CommitlogError::InvalidConfig { .. })
        ));
    });
}

/// A state of one fresh segment (no IO), for the bookkeeping tests.
fn bare_state() -> State {
    State::new(1, 16, BLOCK as usize, BTreeSet::from([1]))
}

/// Parks a durable waiter for `seq` (with a waker that does nothing).
fn durable_waiter(state: &mut State, seq: u64) -> u64 {
    state
        .waiters
        .park(true, seq, std::task::Waker::noop().clone());
    seq
}

fn waiting_seqs(state: &State) -> Vec<u64> {
    state.waiters.seqs()
}

#[test]
fn a_waiter_is_answered_only_by_a_sync_started_after_its_write_completed() {
    on_shard(|| async {
        let mut state = bare_state();
        let answers: Vec<_> = (1..=4).map(|seq| durable_waiter(&mut state, seq)).collect();
        state.write_completed(2);
        assert!(state.unsynced());
        let covered = state.sync_started();
        assert_eq!(covered, 2);
        assert!(!state.unsynced(), "everything written is covered");
        // Entries 3 and 4 finish writing while the sync is in flight.
        state.write_completed(4);
        assert!(state.unsynced());
        assert_eq!(waiting_seqs(&state), [1, 2, 3, 4]);
        state.sync_completed(covered, 1, 3);
        assert_eq!(state.synced_seq, 2);
        assert_eq!(waiting_seqs(&state), [3, 4], "the sync did not cover them");
        assert_eq!(state.durable_blocks_of(1), 3);
        let covered = state.sync_started();
        assert_eq!(covered, 4);
        assert_eq!(waiting_seqs(&state), [3, 4]);
        state.sync_completed(covered, 1, 5);
        assert!(state.waiters.is_empty());
        assert_eq!(state.synced_seq, 4);
        for seq in answers {
            assert!(matches!(state.answer_parked(seq, true), Some(Ok(()))));
        }
    });
}

#[test]
fn a_failed_sync_leaves_durability_where_it_was() {
    on_shard(|| async {
        let mut state = bare_state();
        let _answer = durable_waiter(&mut state, 1);
        state.write_completed(1);
        state.sync_started();
        state.sync_failed();
        assert_eq!(state.synced_seq, 0);
        assert_eq!(waiting_seqs(&state), [1]);
        assert_eq!(state.durable_blocks_of(1), 1);
        // A sync of another segment says nothing of this one's blocks.
        let covered = state.sync_started();
        state.sync_completed(covered, 7, 9);
        assert_eq!(state.durable_blocks_of(1), 1);
        assert_eq!(state.synced_seq, 1);
    });
}

#[test]
#[should_panic(expected = "one sync in flight at a time")]
fn two_syncs_in_flight_are_refused() {
    let mut state = bare_state();
    state.write_completed(1);
    state.sync_started();
    state.sync_started();
}

#[test]
fn periodic_writes_are_due_at_a_full_write_or_after_the_delay() {
    let now = scheduler::clock::monotonic_now();
    let mut state = bare_state();
    assert!(!state.write_behind_due(now), "nothing queued");
    state.pending_bytes = 100;
    state.pending_since = Some(now);
    assert!(!state.write_behind_due(now));
    assert!(!state.write_behind_due(now + WRITE_BEHIND_DELAY / 2));
    assert!(state.write_behind_due(now + WRITE_BEHIND_DELAY));
    state.pending_bytes = WRITE_BEHIND_BYTES;
    assert!(state.write_behind_due(now));
    state.pending_bytes = 100;
    state.open.push(b"entry").expect("fits");
    state.open_last_seq = 1;
    state.sealed.push_back(Sealed {
        layout: BatchLayout::new(1, 1, 16, BLOCK as usize),
        last_seq: 1,
    });
    assert!(state.write_behind_due(now), "a sealed batch goes at once");
}

#[test]
fn periodic_appends_are_written_behind_without_a_sync() {
    let dir = test_dir("write_behind");
    let (seqs_written, syncs) = on_shard(move || async move {
        let (log, _) = open(&dir, SyncMode::Periodic(DEFAULT_SYNC_PERIOD)).await;
        for i in 0..10 {
            log.append(&payload(i)).await.expect("append");
        }
        // Nobody asks for a sync: the write-behind delay writes them.
        log.inner.wait(10, false).await.expect("written");
        let written = log.inner.state.borrow().written_seq;
        let syncs = log.stats().syncs;
        log.close().await.expect("close");
        (written, syncs)
    });
    assert_eq!(seqs_written, 10);
    assert_eq!(syncs, 0);
}

#[test]
fn batch_appends_return_only_once_durable_across_segment_switches() {
    let dir = test_dir("pipelined");
    let dir_for_shard = dir.clone();
    let (count, stats) = on_shard(move || async move {
        let (log, _) = open(&dir_for_shard, SyncMode::Batch).await;
        let log = Rc::new(log);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let log = log.clone();
                scheduler::spawn_local_task(async move {
                    for i in 0..12 {
                        // `append` reserves before its first await (there
                        // is room), so its entry gets the next number.
                        let seq = log.inner.state.borrow().last_seq + 1;
                        log.append(&payload(task * 12 + i)).await.expect("append");
                        let state = log.inner.state.borrow();
                        assert!(state.synced_seq >= seq, "answered before durable");
                        assert!(state.synced_seq <= state.written_seq);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let stats = log.stats();
        Rc::into_inner(log)
            .expect("tasks done")
            .close()
            .await
            .expect("close");
        let (log, replay) = open(&dir_for_shard, SyncMode::Batch).await;
        log.close().await.expect("close");
        (replay.entries.len(), stats)
    });
    assert_eq!(count, 16 * 12);
    assert!(stats.syncs >= 2, "{stats:?}");
    // Write-through: each write is its own sync, and no fdatasync follows.
    assert_eq!(stats.syncs, stats.batches_written, "{stats:?}");
    assert_eq!(stats.appends, 16 * 12);
}

#[test]
fn batch_appenders_are_answered_in_log_order() {
    let dir = test_dir("answer_order");
    let answered = on_shard(move || async move {
        let (log, _) = open(&dir, SyncMode::Batch).await;
        let log = Rc::new(log);
        let answered = Rc::new(std::cell::RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..32)
            .map(|task| {
                let (log, answered) = (log.clone(), answered.clone());
                scheduler::spawn_local_task(async move {
                    let seq = log.inner.state.borrow().last_seq + 1;
                    log.append(&payload(task)).await.expect("append");
                    answered.borrow_mut().push(seq);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        assert!(log.inner.state.borrow().waiters.is_empty());
        Rc::into_inner(log)
            .expect("tasks done")
            .close()
            .await
            .expect("close");
        Rc::into_inner(answered).expect("tasks done").into_inner()
    });
    assert_eq!(answered, (1..=32).collect::<Vec<u64>>());
}

#[test]
fn a_cancelled_batch_append_leaves_no_waiter_behind() {
    let dir = test_dir("cancelled_waiter");
    let dir_for_shard = dir.clone();
    let replayed = on_shard(move || async move {
        let (log, _) = open(&dir_for_shard, SyncMode::Batch).await;
        let mut append = Box::pin(log.append(b"cancelled"));
        let first = futures_lite::future::poll_once(&mut append).await;
        assert!(first.is_none(), "parked until durable");
        assert_eq!(waiting_seqs(&log.inner.state.borrow()), [1]);
        drop(append);
        assert!(log.inner.state.borrow().waiters.is_empty());
        log.append(b"next").await.expect("append");
        log.sync().await.expect("sync");
        log.close().await.expect("close");
        let (log, replay) = open(&dir_for_shard, SyncMode::Batch).await;
        log.close().await.expect("close");
        payloads(&replay)
    });
    // The entry was laid out before its wait was cancelled: it is logged.
    assert_eq!(replayed, [b"cancelled".to_vec(), b"next".to_vec()]);
}
