// The Raft core: a pure state machine in the style of etcd's RawNode, with its storage interface.
export type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  MessageType,
  NodeId,
  RaftRole,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  ReadState,
  Ready,
  Snapshot,
  SnapshotMessage,
  SnapshotMetadata,
  SoftState,
  TimeoutNowMessage,
  TransferLeaderMessage,
  VoteMessage,
  VoteResponseMessage,
} from './types.js';
export { NONE } from './types.js';
export type { RaftOptions, ReadOnlyOption } from './config.js';
export type { RaftStorage } from './storage.js';
export { MemoryRaftStorage } from './storage.js';
export type { ProgressState } from './progress.js';
export type { Proposed, ProgressStatus, RaftStatus } from './raw-node.js';
export { RawNode } from './raw-node.js';
export {
  applyConfChange,
  confState,
  decodeConfChange,
  encodeConfChange,
  formatConfState,
  invalidConfChangeReason,
} from './conf-change.js';
export { entrySize } from './entries.js';
