import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useTitle } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { roleAtLeast, useSession, type Role } from '../../session.js';
import { AuditTab } from './audit-tab.js';
import { CredentialsTab } from './credentials-tab.js';
import { KeysTab } from './keys-tab.js';
import { RetentionTab } from './retention-tab.js';
import { UsageTab } from './usage-tab.js';
import { UsersTab } from './users-tab.js';
import './settings.css';

/** Tabs and the least role that may read each (src/security/permissions.ts); a tab the role cannot read is not shown. */
const TABS: { id: string; label: string; role: Role }[] = [
  { id: 'users', label: 'Users', role: 'ADMIN' },
  { id: 'keys', label: 'API keys', role: 'VIEWER' },
  { id: 'credentials', label: 'Credentials', role: 'VIEWER' },
  { id: 'retention', label: 'Retention', role: 'VIEWER' },
  { id: 'usage', label: 'Usage', role: 'VIEWER' },
  { id: 'audit', label: 'Audit', role: 'ADMIN' },
];

export function SettingsPage(props: { loc: Location }) {
  const session = useSession();
  const tabs = TABS.filter((t) => roleAtLeast(session.role, t.role));
  const asked = props.loc.path.split('/')[2];
  const tab = tabs.find((t) => t.id === asked);
  useTitle(tab ? `Settings · ${tab.label}` : 'Settings');
  if (!tab) {
    // /settings, or a tab this role cannot read: the first one it can.
    navigate(`/settings/${tabs[0]!.id}`, { replace: true });
    return <Loading />;
  }
  return (
    <div class="settings-page">
      <h1>Settings</h1>
      <nav class="tabs" aria-label="Settings sections">
        {tabs.map((t) => (
          <Link key={t.id} href={`/settings/${t.id}`} aria-current={t.id === tab.id ? 'page' : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab.id === 'users' && <UsersTab />}
      {tab.id === 'keys' && <KeysTab />}
      {tab.id === 'credentials' && <CredentialsTab />}
      {tab.id === 'retention' && <RetentionTab />}
      {tab.id === 'usage' && <UsageTab />}
      {tab.id === 'audit' && <AuditTab loc={props.loc} />}
    </div>
  );
}
