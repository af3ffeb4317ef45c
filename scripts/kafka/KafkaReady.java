// Readiness probe for scripts/kafka.sh, run in Java's single-file source mode:
//
//   java -cp '<libs>/*' scripts/kafka/KafkaReady.java 127.0.0.1:9092
//
// It uses only the public Admin API of kafka-clients (which is in libs/), so it
// works for every Kafka 4.x version. Exit code 0 means the broker
//   1. answers Metadata (describeCluster: at least one live broker, listTopics), and
//   2. has a working group coordinator: FindCoordinator for a throw-away group makes
//      the broker create __consumer_offsets if it does not exist yet; we then wait
//      until OffsetFetch succeeds. Doing this here means the first consumer group
//      of a test run does not pay the "Group Coordinator Not Available" retry delay.
// Any other outcome prints one line to stderr and exits 1 (the script retries).

import java.time.Duration;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;

public class KafkaReady {
    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: KafkaReady.java HOST:PORT");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "eye-kafka-ready");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "200");
        Admin admin = Admin.create(p);
        try {
            var cluster = admin.describeCluster();
            int nodes = cluster.nodes().get(10, TimeUnit.SECONDS).size();
            String clusterId = cluster.clusterId().get(10, TimeUnit.SECONDS);
            if (nodes == 0) {
                throw new IllegalStateException("metadata lists no live broker yet");
            }
            admin.listConsumerGroupOffsets("eye-kafka-ready-probe")
                 .partitionsToOffsetAndMetadata().get(25, TimeUnit.SECONDS);
            Set<String> topics = admin.listTopics(new ListTopicsOptions().listInternal(true))
                                      .names().get(10, TimeUnit.SECONDS);
            System.err.printf("kafka ready: cluster.id=%s brokers=%d topics=%d (__consumer_offsets %s)%n",
                    clusterId, nodes, topics.size(),
                    topics.contains("__consumer_offsets") ? "present" : "missing");
        } catch (Exception e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            System.err.println("kafka not ready: " + c.getClass().getSimpleName() + ": " + c.getMessage());
            admin.close(Duration.ZERO); // do not wait for the pending calls to time out
            System.exit(1);
        }
        admin.close(Duration.ofSeconds(5));
    }
}
