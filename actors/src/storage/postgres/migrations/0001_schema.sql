-- lastmile's schema, version 1. Values are kept as the storage layer's
-- versioned records (`body`, the bytes the sled engine keeps too); the
-- columns beside them are what a value is looked up or ordered by.

CREATE TABLE orders (
    id text PRIMARY KEY,
    customer text NOT NULL,
    created_ms bigint NOT NULL,
    status text NOT NULL,
    active boolean NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX orders_active ON orders (id) WHERE active;
CREATE INDEX orders_customer ON orders (customer, id);
CREATE INDEX orders_customer_status ON orders (customer, status, id);
CREATE INDEX orders_created ON orders (created_ms);

CREATE TABLE idempotency (
    customer text NOT NULL,
    key text NOT NULL,
    order_id text NOT NULL,
    at_ms bigint NOT NULL,
    PRIMARY KEY (customer, key)
);
CREATE INDEX idempotency_at ON idempotency (at_ms);

CREATE TABLE payments (order_id text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    expires_ms bigint NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_ms);

CREATE TABLE blocks (openid text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE operators (name text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE form_ids (
    openid text NOT NULL,
    expires_at bigint NOT NULL,
    id bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (openid, expires_at, id)
);
CREATE INDEX form_ids_expiry ON form_ids (expires_at);

CREATE TABLE grants (
    openid text NOT NULL,
    template text NOT NULL,
    left_n integer NOT NULL CHECK (left_n > 0),
    PRIMARY KEY (openid, template)
);

CREATE TABLE meta (key text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE share_codes (
    scene text NOT NULL,
    page text NOT NULL,
    url text NOT NULL,
    PRIMARY KEY (scene, page)
);

CREATE TABLE couriers (openid text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE courier_releases (
    openid text NOT NULL,
    day text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (openid, day)
);

CREATE TABLE uploads (id text PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE upload_days (
    openid text NOT NULL,
    day text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (openid, day)
);

-- Objects kept "locally" (uploads, share-code images) live here, so every
-- node serves them.
CREATE TABLE objects (key text PRIMARY KEY, content_type text NOT NULL, bytes bytea NOT NULL);

CREATE TABLE outbox (id bigint PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE ledger_inbox (seq bigint PRIMARY KEY, body bytea NOT NULL);

CREATE TABLE ledger_postings (
    key text PRIMARY KEY,
    at_ms bigint NOT NULL,
    body bytea NOT NULL
);

-- Every leg of every posting: the balances are derived from them by the
-- database, and each posting's legs must sum to zero when it commits.
CREATE TABLE ledger_legs (
    posting text NOT NULL REFERENCES ledger_postings (key),
    account text NOT NULL,
    amount bigint NOT NULL
);
CREATE INDEX ledger_legs_posting ON ledger_legs (posting);

CREATE TABLE ledger_balances (
    account text PRIMARY KEY,
    fen bigint NOT NULL,
    CONSTRAINT only_clearing_goes_negative CHECK (fen >= 0 OR account = 'clearing')
);

CREATE FUNCTION ledger_leg_moves_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Not INSERT … ON CONFLICT: the check would judge the leg alone.
    UPDATE ledger_balances SET fen = fen + NEW.amount WHERE account = NEW.account;
    IF NOT FOUND THEN
        INSERT INTO ledger_balances (account, fen) VALUES (NEW.account, NEW.amount);
    END IF;
    DELETE FROM ledger_balances WHERE account = NEW.account AND fen = 0;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_legs_move_balances AFTER INSERT ON ledger_legs
    FOR EACH ROW EXECUTE FUNCTION ledger_leg_moves_balance();

CREATE FUNCTION ledger_posting_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE total bigint;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM ledger_legs WHERE posting = NEW.posting;
    IF total <> 0 THEN
        RAISE EXCEPTION 'posting % sums to % fen, not 0', NEW.posting, total;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_postings_sum_to_zero AFTER INSERT ON ledger_legs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_balances();

CREATE TABLE ledger_entries (
    account text NOT NULL,
    seq bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (account, seq)
);

CREATE TABLE ledger_days (
    day text NOT NULL,
    what text NOT NULL,
    order_id text NOT NULL,
    fen bigint NOT NULL,
    PRIMARY KEY (day, what, order_id)
);

CREATE TABLE ledger_rates (order_id text PRIMARY KEY, percent smallint NOT NULL);

CREATE TABLE withdrawals (
    id text PRIMARY KEY,
    courier text NOT NULL,
    status text NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX withdrawals_courier ON withdrawals (courier, id);
CREATE INDEX withdrawals_status ON withdrawals (status, id);

CREATE TABLE withdrawal_keys (
    courier text NOT NULL,
    key text NOT NULL,
    withdrawal text NOT NULL,
    PRIMARY KEY (courier, key)
);

CREATE TABLE reconciliations (day text PRIMARY KEY, body bytea NOT NULL);
