-- Batched creates: a create that makes a row is remembered by the row itself (its
-- request id and payload hash), so the common case writes one patients row and one
-- audit row and nothing else. patient_create_requests now only records creates that
-- were answered 409 conflict (no row to remember them by), plus the replies stored by
-- the earlier one-at-a-time design, which stay valid.
ALTER TABLE patients ADD COLUMN payload_hash text;
CREATE UNIQUE INDEX patients_request ON patients (owner_id, request_id);
