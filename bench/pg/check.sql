-- Conservation after a run: per ledger, debits == credits; counts by result.
SELECT ledger, sum(debits) AS debits, sum(credits) AS credits,
       sum(debits) = sum(credits) AS balanced
FROM accounts GROUP BY ledger;
SELECT result, count(*) FROM transfers GROUP BY result ORDER BY result;
