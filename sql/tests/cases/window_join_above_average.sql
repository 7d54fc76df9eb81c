-- A window join that keeps about half of its rows: the last digits of prices that occur
-- at least as often as the window's average digit, in 10 s windows sliding by 5 s. The
-- average per window (a regroup of the per-digit counts) comes first, the condition has
-- the columns swapped, and every output row names its window.
-- input bids: nexmark seed=8 rate=2000 events=20000 disorder=300
-- windows: 2
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK busy_bidders AS
SELECT m.window_start, m.window_end, c.digit, c.num, m.mean
FROM (
    SELECT window_start, window_end, AVG(num) AS mean
    FROM (
        SELECT price % 10 AS digit, window_start, window_end, COUNT(*) AS num
        FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '10' SECOND)
        GROUP BY price % 10, window_start, window_end
    )
    GROUP BY window_start, window_end
) AS m
JOIN (
    SELECT price % 10 AS digit, window_start, window_end, COUNT(*) AS num
    FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '10' SECOND)
    GROUP BY price % 10, window_start, window_end
) AS c
ON c.window_end = m.window_end AND m.window_start = c.window_start AND m.mean <= c.num;
-- oracle
WITH t AS (SELECT price % 10 AS digit, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT digit, (ts / 5000 - k) * 5000 AS ws
           FROM t CROSS JOIN (VALUES (0), (1)) AS o(k)),
     c AS (SELECT digit, ws, COUNT(*) AS num FROM w GROUP BY digit, ws),
     m AS (SELECT ws, AVG(num) AS mean FROM c GROUP BY ws)
SELECT c.ws AS window_start, c.ws + 10000 AS window_end, c.digit, c.num, m.mean
FROM c JOIN m ON c.ws = m.ws WHERE c.num >= m.mean
