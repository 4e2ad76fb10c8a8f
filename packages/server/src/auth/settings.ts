import type { AclPermission } from '../acl/rules.js';

/** Authentication and authorization settings that the admin API may change while the node runs. */
export interface AuthSettings {
  /** Whether clients without credentials are let in (`auth.allow_anonymous`). */
  allowAnonymous: boolean;
  /** The decision when no ACL rule matches (`auth.acl_default`). */
  aclDefault: AclPermission;
}
