//! The disk model of the IO scheduler, from the node's side: the
//! `tessera io-tune` command that measures the disks and writes
//! `io_properties.yaml`, and loading that file at start
//! (`io_properties_file`), with conservative defaults when there is none.
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use scheduler::ioqueue::{self, DiskProperties, IoClass, IoConfig, IoProperties};
use scheduler::iotune::{self, IoTuneOptions};

use crate::config::Config;

/// `tessera io-tune`: measures the disk under each data directory (one
/// entry per mount point) and writes `output`.
pub fn io_tune(config: &Config, output: &Path, duration: Duration) -> anyhow::Result<()> {
    let options = IoTuneOptions {
        duration,
        ..IoTuneOptions::default()
    };
    let mut disks: Vec<DiskProperties> = Vec::new();
    for dir in &config.data_file_directories {
        let mount = iotune::mount_point(dir).ok();
        if mount.is_some()
            && disks
                .iter()
                .any(|disk| Some(&disk.mountpoint) == mount.as_ref())
        {
            tracing::info!(dir = %dir.display(), "already measured its disk");
            continue;
        }
        tracing::info!(
            dir = %dir.display(),
            seconds_per_measurement = duration.as_secs_f64(),
            "measuring the disk"
        );
        let disk = iotune::measure(dir, &options)?;
        tracing::info!(
            mountpoint = %disk.mountpoint.display(),
            read_iops = disk.read_iops,
            read_bandwidth = disk.read_bandwidth,
            write_iops = disk.write_iops,
            write_bandwidth = disk.write_bandwidth,
            "measured"
        );
        disks.push(disk);
    }
    let properties = IoProperties { disks };
    properties.write(output)?;
    print!("{}", properties.to_yaml());
    tracing::info!(output = %output.display(), "wrote the disk model");
    Ok(())
}

/// Sets the IO scheduler's disk model from `io_properties_file`, or the
/// conservative defaults (and says so). Call before the shards start.
pub fn configure_io_scheduler(config: &Config) -> anyhow::Result<()> {
    let mut io_config = IoConfig::default();
    for ((_, shares), class) in config.io_shares().into_iter().zip(IoClass::ALL) {
        if let Some(shares) = shares {
            io_config.shares[class.index()] = shares;
        }
    }
    io_config.scheduling = config.io_scheduler;
    if !config.io_scheduler {
        tracing::warn!("io_scheduler is off: every IO goes straight to the disk, unscheduled");
    }
    match &config.io_properties_file {
        Some(path) => {
            let properties = IoProperties::load(path)?;
            let data_dir = config
                .data_file_directories
                .first()
                .context("data_file_directories is empty")?;
            let disk = properties
                .disk_for(data_dir)
                .context("the IO properties file lists no disks")?;
            tracing::info!(
                file = %path.display(),
                mountpoint = %disk.mountpoint.display(),
                read_iops = disk.read_iops,
                read_bandwidth = disk.read_bandwidth,
                write_iops = disk.write_iops,
                write_bandwidth = disk.write_bandwidth,
                "IO scheduler uses the measured disk model"
            );
            io_config.disk = disk.clone();
        }
        None => {
            let disk = &io_config.disk;
            tracing::info!(
                read_iops = disk.read_iops,
                read_bandwidth = disk.read_bandwidth,
                write_iops = disk.write_iops,
                write_bandwidth = disk.write_bandwidth,
                "no io_properties_file: the IO scheduler uses a conservative default disk model; \
                 run `tessera io-tune` to measure the disk"
            );
        }
    }
    ioqueue::configure(io_config).context("configure the IO scheduler")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_properties_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("io_properties.yaml");
        std::fs::write(&path, "disks: []\n").expect("write");
        let config = Config {
            io_properties_file: Some(path),
            ..Config::default()
        };
        let error = configure_io_scheduler(&config).expect_err("no disks");
        assert!(
            format!("{error:#}").contains("io_properties.yaml"),
            "{error:#}"
        );
    }
}
