-- Every delivery is updated twice on its way (claimed, recorded) and neither update can be a
-- HOT update, so the index entries of claimed deliveries stay at the head of the ready queue's
-- index until a vacuum removes them, and every claim steps over them. PostgreSQL's defaults
-- vacuum a table once a fifth of it is dead, and throttle that vacuum: on a 1,000,000-delivery
-- drain that left the head of the queue full of dead entries for minutes. Vacuum this table
-- sooner, and unthrottled.
ALTER TABLE relay.deliveries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
