//! The placement invariant: each server holds exactly the keys whose
//! preference list ([`Cluster::replicas`]) includes it.

use std::collections::HashMap;

use indicatif::ProgressBar;
use ringkv::{Cluster, ServerId};

/// How far the cluster is from the placement invariant. Meaningful only
/// while nothing writes and no membership change runs.
#[derive(Debug, Default)]
pub(crate) struct PlacementCheck {
    /// Entries the invariant calls for: keys x min(R, N).
    pub(crate) expected: u64,
    /// (key, replica) pairs where the replica holds nothing for the key.
    pub(crate) missing: u64,
    /// Entries on servers outside their key's preference list, or of keys
    /// nobody wrote.
    pub(crate) stray: u64,
    pub(crate) servers: usize,
}

impl PlacementCheck {
    pub(crate) fn holds(&self) -> bool {
        self.missing == 0 && self.stray == 0
    }
}

/// Computes every key's preference list, then walks every server's entries:
/// an entry is in place if its key's list includes the server, stray
/// otherwise. A server missing nothing holds as many entries in place as
/// there are keys whose list includes it.
pub(crate) fn check(cluster: &Cluster, keys: &[String], progress: &ProgressBar) -> PlacementCheck {
    let servers: Vec<_> = cluster
        .servers()
        .iter()
        .filter_map(|id| cluster.server(id.as_str()))
        .collect();
    let entries: u64 = servers.iter().map(|server| server.len() as u64).sum();
    progress.set_length(keys.len() as u64 + entries);

    let mut should_hold: HashMap<ServerId, u64> = HashMap::new();
    let mut replicas: HashMap<&[u8], Vec<ServerId>> = HashMap::with_capacity(keys.len());
    for key in keys {
        let list = cluster.replicas(key);
        for replica in &list {
            *should_hold.entry(replica.clone()).or_default() += 1;
        }
        replicas.insert(key.as_bytes(), list);
        progress.inc(1);
    }

    let mut result = PlacementCheck {
        servers: servers.len(),
        expected: should_hold.values().sum(),
        ..PlacementCheck::default()
    };
    for server in &servers {
        let mut in_place = 0u64;
        for (key, _) in server.entries() {
            let listed = replicas
                .get(&key[..])
                .is_some_and(|list| list.contains(server.server_id()));
            if listed {
                in_place += 1;
            } else {
                result.stray += 1;
            }
            progress.inc(1);
        }
        let should = should_hold.get(server.server_id()).copied().unwrap_or(0);
        result.missing += should - in_place;
    }
    // A key listed on a server the cluster does not know is missing too.
    let known: u64 = servers
        .iter()
        .filter_map(|server| should_hold.get(server.server_id()))
        .sum();
    result.missing += result.expected - known;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkv::{Config, Timestamp, Versioned};

    fn loaded(keys: &[String]) -> Cluster {
        let config = Config {
            replication: 2,
            ..Config::default()
        };
        let cluster = Cluster::new(config, ["a", "b", "c", "d"]).unwrap();
        for key in keys {
            cluster.put(key, "v").unwrap();
        }
        cluster
    }

    fn keys() -> Vec<String> {
        (0..200).map(|i| format!("key{i}")).collect()
    }

    #[test]
    fn a_freshly_loaded_cluster_is_in_place() {
        let keys = keys();
        let result = check(&loaded(&keys), &keys, &ProgressBar::hidden());
        assert!(result.holds(), "{result:?}");
        assert_eq!(result.expected, 400);
    }

    #[test]
    fn an_entry_off_its_preference_list_is_stray() {
        let keys = keys();
        let cluster = loaded(&keys);
        let replicas = cluster.replicas(&keys[0]);
        let outsider = ["a", "b", "c", "d"]
            .into_iter()
            .find(|id| !replicas.iter().any(|replica| replica.as_str() == *id))
            .unwrap();
        let version = Versioned {
            timestamp: Timestamp(1),
            value: Some("v".into()),
        };
        cluster
            .server(outsider)
            .unwrap()
            .apply(&keys[0], version)
            .unwrap();

        let result = check(&cluster, &keys, &ProgressBar::hidden());
        assert_eq!((result.stray, result.missing), (1, 0));
    }

    #[test]
    fn a_key_nobody_holds_is_missing_on_each_replica() {
        let mut keys = keys();
        let cluster = loaded(&keys);
        keys.push("never written".to_owned());

        let result = check(&cluster, &keys, &ProgressBar::hidden());
        assert_eq!((result.stray, result.missing), (0, 2));
    }
}
