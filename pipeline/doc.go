// Package pipeline consumes Segment events from a Kafka topic with a
// kafka-go consumer group and applies them to storage in batches.
//
// # Delivery contract
//
// Each batch is decoded, validated and reduced (mapping.Batch), then handed
// to Store.ApplyBatch, which commits the effects, the dead letters and the
// next offset of every partition in the batch in ONE transaction. Only after
// that commit are the offsets committed to Kafka, as a copy for lag tooling.
// When a partition is assigned, consumption resumes from the offset stored
// with the effects, so a message is applied exactly once even when the
// process dies between the two commits or a rebalance hands its partition to
// another member. A message that is not a valid event becomes a dead letter
// in the same transaction and never blocks its partition. So does a message
// the store refuses (mapping.ErrRejected: a value Postgres will not hold, a
// document that cannot be encoded): the consumer splits the refused batch,
// trying its halves in transactions that are rolled back (Store.TryBatch),
// down to the messages responsible, and commits the rest of the batch with
// them as dead letters, the store's error as their reason. Every other
// failure (Postgres or Kafka unreachable, a deadlock, a serialization
// failure, shutdown) is retried with backoff, forever: nothing is dropped.
//
// A consumer applies its partitions in Config.Lanes lanes: each lane owns a
// share of the partitions and commits its own batches, so several
// transactions run at once while every partition's batches stay in order.
// No lock is shared by all lanes: documents are rebuilt by refresh
// transactions from the queue the batches fill (Config.RefreshBatch).
//
// On shutdown the consumer stops fetching, lets the batches in flight (one
// per lane) commit within the shutdown grace (or abandons them: their
// offsets are then not stored either), and leaves the group; the order is
// written down once, in lanes.go.
package pipeline
