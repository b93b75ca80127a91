import { InvalidTenantNameError } from './errors.js';

/**
 * A tenant is one (group, user) pair: a user in several groups is several
 * tenants. The key is `${group}.${user}`. Group names may not contain '.', so
 * the key splits unambiguously at its first '.' (user names may contain dots,
 * e.g. `desc.jane.doe` is group `desc`, user `jane.doe`).
 */
export function tenantKey(group: string, user: string): string {
  checkGroupName(group);
  checkUserName(user);
  return `${group}.${user}`;
}

/** Inverse of {@link tenantKey}. */
export function parseTenantKey(tenant: string): { group: string; user: string } {
  const dot = tenant.indexOf('.');
  if (dot <= 0 || dot === tenant.length - 1) {
    throw new InvalidTenantNameError('tenant', tenant, "expected '<group>.<user>' with non-empty group and user");
  }
  return { group: tenant.slice(0, dot), user: tenant.slice(dot + 1) };
}

export function checkGroupName(group: string): void {
  if (typeof group !== 'string' || group.length === 0) {
    throw new InvalidTenantNameError('group', String(group), 'must be a non-empty string');
  }
  if (group.includes('.')) {
    throw new InvalidTenantNameError('group', group, "must not contain '.' (the tenant key separator)");
  }
}

export function checkUserName(user: string): void {
  if (typeof user !== 'string' || user.length === 0) {
    throw new InvalidTenantNameError('user', String(user), 'must be a non-empty string');
  }
}
