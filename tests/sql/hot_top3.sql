-- The three auctions with the most bids in every 10 s window sliding by 2 s (ties by
-- auction id), the ranking form of Nexmark q5. {with} is filled in by the test.
CREATE SINK hot {with} AS
SELECT * FROM (
    SELECT auction, window_start, window_end, bids,
           ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                              ORDER BY bids DESC, auction ASC) AS rn
    FROM (
        SELECT auction, window_start, window_end, COUNT(*) AS bids
        FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
        GROUP BY auction, window_start, window_end
    )
) WHERE rn <= 3;
