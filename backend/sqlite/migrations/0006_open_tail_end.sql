-- A device's open tail span (the one its next beat may extend) keeps its
-- end on the device row, and the span row says "open" with the largest
-- end there is. A beat that only extends the tail, almost every beat,
-- then rewrites the device row alone, and no longer moves the span's
-- entries in both end_ns indexes (a profile of the service under load
-- found that move the single dearest statement). Closing the span writes
-- its real end once. Readers take an open tail's end from its device.

ALTER TABLE devices ADD COLUMN tail_end_ns INTEGER NOT NULL DEFAULT 0;

UPDATE devices SET tail_end_ns = (SELECT end_ns FROM spans WHERE spans.id = devices.tail_span_id)
	WHERE tail_span_id IS NOT NULL;

UPDATE spans SET end_ns = 9223372036854775807
	WHERE closed = 0 AND id IN (SELECT tail_span_id FROM devices WHERE tail_span_id IS NOT NULL);
