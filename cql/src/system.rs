//! The system tables drivers and tools read: `system.local`, `system.peers` and the
//! `system_schema` tables, plus DESCRIBE rendering.
//!
//! Drivers learn the cluster from these tables when they connect (topology, tokens,
//! partitioner), build their schema metadata from them (token-aware routing needs the
//! partition key columns; cqlsh's DESCRIBE prints from that metadata) and poll
//! `schema_version` to wait for schema agreement. The tables are virtual: their rows are
//! generated from the schema snapshot and the node facts on every read ([`virtual_rows`])
//! and returned as ordinary mutations, so the SELECT executor reads them with the same
//! filtering, ordering and paging code as stored tables.
//!
//! The node reports a 3.x `release_version` (as ScyllaDB does), which makes the Python
//! driver use its Cassandra 3 schema parser (no `system_virtual_schema`) and cqlsh
//! describe from driver metadata. Tables that the drivers probe but tolerate missing
//! (`system.peers_v2`, `system_schema.scylla_tables`, `system_schema.scylla_keyspaces`,
//! `system_virtual_schema.*`) are not defined; a SELECT on them must fail with an
//! Invalid "unconfigured table" error, which is the signal the drivers expect.

mod describe;
mod rows;
mod tables;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use uuid::Uuid;

pub use describe::{
    create_keyspace_cql, describe_keyspace, describe_table, describe_table_with_internals,
    describe_type, quote_ident,
};
pub use rows::virtual_rows;
pub use tables::{
    is_system_keyspace, is_virtual_table, system_keyspaces, system_table_id, LOCAL_STRATEGY,
    SYSTEM, SYSTEM_SCHEMA,
};

/// The partitioner every node reports; drivers compute tokens with it.
pub const PARTITIONER: &str = "org.apache.cassandra.dht.Murmur3Partitioner";
/// The release version reported. A 4.x version tells cqlsh (6.x) that DESCRIBE runs on
/// the server (see `crate::describe`) and selects the Python driver's Cassandra 4 schema
/// parser, which tolerates the absent `system_virtual_schema` tables.
pub const RELEASE_VERSION: &str = "4.0.11";
/// The CQL language version reported.
pub const CQL_VERSION: &str = "3.4.5";
/// The highest native protocol version served.
pub const NATIVE_PROTOCOL_VERSION: &str = "4";
/// Reported for compatibility; there is no Thrift server.
const THRIFT_VERSION: &str = "20.1.0";

/// Node facts `system.local` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub cluster_name: String,
    pub listen_address: IpAddr,
    /// The address other nodes reach this one at (usually `listen_address`).
    pub broadcast_address: IpAddr,
    /// The address clients connect to. Must be a concrete address, never the unspecified
    /// one: the `scylla` driver connects to exactly this address.
    pub rpc_address: IpAddr,
    /// The CQL port clients connect to.
    pub rpc_port: u16,
    pub data_center: String,
    pub rack: String,
    pub host_id: Uuid,
    /// The node's tokens (shown as decimal strings).
    pub tokens: Vec<i64>,
    pub release_version: String,
    pub cql_version: String,
    pub native_protocol_version: String,
    pub partitioner: String,
    /// Seconds since the epoch at which the node started.
    pub gossip_generation: i32,
    /// Feature names, shown comma-separated.
    pub supported_features: Vec<String>,
    /// The other nodes of the cluster (`system.peers`); empty for a single node.
    pub peers: Vec<PeerInfo>,
}

impl NodeInfo {
    /// A single node with the default data center, rack and versions.
    pub fn single(
        cluster_name: &str,
        address: IpAddr,
        rpc_port: u16,
        host_id: Uuid,
        tokens: Vec<i64>,
    ) -> NodeInfo {
        NodeInfo {
            cluster_name: cluster_name.to_string(),
            listen_address: address,
            broadcast_address: address,
            rpc_address: address,
            rpc_port,
            data_center: "datacenter1".to_string(),
            rack: "rack1".to_string(),
            host_id,
            tokens,
            release_version: RELEASE_VERSION.to_string(),
            cql_version: CQL_VERSION.to_string(),
            native_protocol_version: NATIVE_PROTOCOL_VERSION.to_string(),
            partitioner: PARTITIONER.to_string(),
            gossip_generation: 0,
            supported_features: Vec::new(),
            peers: Vec::new(),
        }
    }
}

/// One other node, as `system.peers` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer's broadcast (inter-node) address: the table's key.
    pub peer: IpAddr,
    /// The address clients connect to.
    pub rpc_address: IpAddr,
    pub rpc_port: u16,
    pub data_center: String,
    pub rack: String,
    pub host_id: Uuid,
    pub tokens: Vec<i64>,
    pub release_version: String,
    /// The schema version the peer last reported; drivers wait until all agree.
    pub schema_version: Uuid,
    pub supported_features: Vec<String>,
}
