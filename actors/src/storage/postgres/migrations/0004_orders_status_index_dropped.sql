-- A customer's list filters its status after the (customer, id) index
-- (the query's "status is NULL or matches" form cannot use another), so
-- orders_customer_status was never read; it only cost every order write
-- an index entry, and a status change an update that could not be HOT.
DROP INDEX IF EXISTS orders_customer_status;
