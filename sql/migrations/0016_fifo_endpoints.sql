-- Each worker's poll looks for FIFO endpoints whose oldest open delivery is held behind nothing
-- (release_fifo_heads): an index of the FIFO endpoints alone, so that the poll reads those and not
-- every endpoint row, once a second, in every worker.
CREATE INDEX endpoints_fifo ON relay.endpoints (tenant_id, id) WHERE fifo;
