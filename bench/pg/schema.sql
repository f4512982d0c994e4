-- ringledger's PostgreSQL peer: the same double-entry ledger, the honest way.
--
-- accounts: one row per account, debits/credits posted in minor units.
-- flags bit 1 (2) = debits_must_not_exceed_credits, as in ringledger.
-- transfers: one row per transfer id (primary key: the idempotency key).
-- A transfer that fails its balance check is stored with its result code,
-- so that a retry of that id gets the same answer (ringledger burns the id
-- the same way); a retry of an applied id returns 1 (exists).
DROP TABLE IF EXISTS transfers;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (
    id      bigint PRIMARY KEY,
    ledger  integer NOT NULL DEFAULT 1,
    code    smallint NOT NULL DEFAULT 1,
    flags   smallint NOT NULL DEFAULT 0,
    debits  bigint NOT NULL DEFAULT 0,
    credits bigint NOT NULL DEFAULT 0
);
CREATE TABLE transfers (
    id      bigint PRIMARY KEY,
    debit   bigint NOT NULL,
    credit  bigint NOT NULL,
    amount  bigint NOT NULL,
    result  integer NOT NULL,
    ts      timestamptz NOT NULL DEFAULT now()
);

-- One transfer. Returns ringledger's result code: 0 ok, 1 exists,
-- 60 debit_account_not_found, 61 credit_account_not_found,
-- 87 exceeds_credits. The debit (with its balance check) comes first; the
-- credit only if the debit passed; all in the caller's transaction.
CREATE OR REPLACE FUNCTION transfer(p_id bigint, p_debit bigint, p_credit bigint,
                                    p_amount bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_result integer := 0;
BEGIN
    INSERT INTO transfers (id, debit, credit, amount, result)
        VALUES (p_id, p_debit, p_credit, p_amount, 0)
        ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 1;   -- the id is taken: exists (or the remembered failure)
    END IF;
    -- Both rows locked in id order: concurrent transfers between the same
    -- two accounts wait instead of deadlocking.
    PERFORM 1 FROM accounts WHERE id IN (p_debit, p_credit) ORDER BY id FOR UPDATE;
    UPDATE accounts SET debits = debits + p_amount
        WHERE id = p_debit AND ((flags & 2) = 0 OR debits + p_amount <= credits);
    IF NOT FOUND THEN
        v_result := CASE WHEN EXISTS (SELECT 1 FROM accounts WHERE id = p_debit)
                         THEN 87 ELSE 60 END;
    ELSE
        UPDATE accounts SET credits = credits + p_amount WHERE id = p_credit;
        IF NOT FOUND THEN
            -- undo the debit: the transfer fails as a whole
            UPDATE accounts SET debits = debits - p_amount WHERE id = p_debit;
            v_result := 61;
        END IF;
    END IF;
    IF v_result <> 0 THEN
        UPDATE transfers SET result = v_result WHERE id = p_id;
    END IF;
    RETURN v_result;
END $$;

-- A batch of transfers in one transaction, the same checks for each, in
-- order. Returns the number applied (result 0). The batch first locks every
-- account it touches in id order, so that two concurrent batches wait for
-- each other instead of deadlocking (what a careful application does; the
-- transfers are still applied in the order given).
CREATE OR REPLACE FUNCTION transfer_batch(p_ids bigint[], p_debits bigint[],
                                          p_credits bigint[], p_amounts bigint[])
    RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ok integer := 0;
BEGIN
    PERFORM 1 FROM accounts WHERE id = ANY (p_debits || p_credits) ORDER BY id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        IF transfer(p_ids[i], p_debits[i], p_credits[i], p_amounts[i]) = 0 THEN
            v_ok := v_ok + 1;
        END IF;
    END LOOP;
    RETURN v_ok;
END $$;
