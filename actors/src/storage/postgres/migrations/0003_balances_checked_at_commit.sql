-- No account but clearing may be negative once a transaction commits; in
-- between, legs land in any order (a copied journal arrives in key order,
-- a completion's key before its payment's). A CHECK would judge each leg
-- alone; this constraint trigger judges the balance at COMMIT.
ALTER TABLE ledger_balances DROP CONSTRAINT only_clearing_goes_negative;

CREATE FUNCTION ledger_balance_not_negative() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE now_fen bigint;
BEGIN
    SELECT fen INTO now_fen FROM ledger_balances WHERE account = NEW.account;
    IF now_fen < 0 AND NEW.account <> 'clearing' THEN
        RAISE EXCEPTION 'account % would hold % fen', NEW.account, now_fen;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_balances_not_negative AFTER INSERT OR UPDATE ON ledger_balances
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_balance_not_negative();
