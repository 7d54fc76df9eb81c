-- SESSION windows per user (gap 5 s) over a small hand-written input, checked against
-- rows worked out by hand and against a batch query that finds sessions with LAG.
-- input clicks: data/clicks.jsonl
CREATE SOURCE clicks (
    user_id BIGINT NOT NULL, page VARCHAR, amount DOUBLE, ts TIMESTAMP(3) NOT NULL,
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (connector = 'log', topic = 'clicks', partitions = '1');

CREATE SINK sessions AS
SELECT user_id, window_start, window_end, COUNT(*) AS clicks, SUM(amount) AS spent
FROM SESSION(clicks, ts, INTERVAL '5' SECOND)
GROUP BY user_id, window_start, window_end;
-- oracle
WITH t AS (SELECT user_id, amount, CAST(ts AS BIGINT) AS ms FROM clicks),
     g AS (SELECT *, CASE WHEN ms - LAG(ms) OVER (PARTITION BY user_id ORDER BY ms) < 5000
                          THEN 0 ELSE 1 END AS new_session FROM t),
     s AS (SELECT *, SUM(new_session) OVER (PARTITION BY user_id ORDER BY ms
                                            ROWS UNBOUNDED PRECEDING) AS session FROM g)
SELECT user_id, MIN(ms) AS window_start, MAX(ms) + 5000 AS window_end,
       COUNT(*) AS clicks, SUM(amount) AS spent
FROM s GROUP BY user_id, session
-- expected
1 | 1704067200000 | 1704067211000 | 3 | 6.000000
1 | 1704067220000 | 1704067228000 | 2 | 30.000000
2 | 1704067201000 | 1704067206000 | 1 | 0.500000
2 | 1704067207500 | 1704067213000 | 2 | 3.250000
