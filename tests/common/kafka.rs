//! A real Kafka-protocol broker for the Kafka tests: tansu on a fresh SQLite file,
//! installed once into a cache directory by `scripts/install-tansu.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tansu binary, installed on first use.
pub fn tansu() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-tansu.sh");
        let out = Command::new("bash")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "installing tansu failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A running broker; killed when dropped.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
    dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = super::durable::free_port();
        let bootstrap = format!("127.0.0.1:{port}");
        let url = format!("tcp://{bootstrap}");
        let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
        let child = Command::new(tansu())
            .current_dir(dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let broker = Broker {
            child,
            bootstrap,
            dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(&broker.bootstrap).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tansu did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://{}", self.bootstrap))
            .args(["--partitions", &partitions.to_string(), topic])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "creating topic {topic}");
    }
}

impl Drop for Broker {
    /// Stops the broker; when a test failed, shows the end of its log first.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("broker.log"));
            let log = log.unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- end of the broker's log ---\n{tail}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `batches[p]` to partition `p` of `topic` as JSON values, one record per row,
/// with kafka-python (an outside producer, as a user's application would be).
pub async fn produce_json(
    bootstrap: &str,
    topic: &str,
    batches: &[Vec<arrow::array::RecordBatch>],
) {
    let mut input = Vec::new();
    for (p, partition) in batches.iter().enumerate() {
        for batch in partition {
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            writer.write(batch).unwrap();
            writer.finish().unwrap();
            for line in String::from_utf8(writer.into_inner()).unwrap().lines() {
                input.extend_from_slice(format!("{p}\t{line}\n").as_bytes());
            }
        }
    }
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(super::python::python())
            .arg(super::python::script("produce_kafka.py"))
            .args([&bootstrap, &topic])
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        assert!(child.wait().unwrap().success(), "produce_kafka.py failed");
    })
    .await
    .unwrap();
}

/// Records in `topic` (sum of the partitions' end offsets).
pub fn record_count(bootstrap: &str, topic: &str, partitions: u32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..partitions as i32)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .unwrap();
            high - low
        })
        .sum()
}

/// Every record of `topic`, read with kafka-python, as JSON values.
pub fn read_with_kafka_python(bootstrap: &str, topic: &str) -> Vec<serde_json::Value> {
    let out = Command::new(super::python::python())
        .arg(super::python::script("read_kafka.py"))
        .args([bootstrap, topic])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "read_kafka.py failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
