// The boot tests take their Debian mirror from apt's own configuration: both file formats, the
// suite itself rather than -updates/-security, disabled entries ignored.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostAptSources, mirrorFor, parseDeb822, parseOneLine } from './apt-sources.js';

const deb822 = `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: trixie
Components: main
`;

describe('apt sources', () => {
  it('reads deb822 stanzas: every URI and suite, Signed-By, Enabled: no skipped', () => {
    const s = parseDeb822(deb822);
    expect(s.map((x) => `${x.uri} ${x.suite}`)).toEqual([
      'http://mirror.example/debian bookworm',
      'http://mirror.example/debian bookworm-updates',
      'http://mirror.example/debian-security bookworm-security',
    ]);
    expect(s[0]!.keyring).toBe('/usr/share/keyrings/debian-archive-keyring.gpg');
    expect(s[2]!.components).toEqual(['main', 'contrib']);
  });

  it('reads one-line sources with options and comments', () => {
    const s = parseOneLine(
      '# deb http://old.example/debian bookworm main\n' +
        'deb-src http://src.example/debian bookworm main\n' +
        'deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] https://m.example/debian bookworm main non-free # note\n',
    );
    expect(s).toEqual([
      {
        uri: 'https://m.example/debian',
        suite: 'bookworm',
        components: ['main', 'non-free'],
        keyring: '/etc/apt/keyrings/x.gpg',
      },
    ]);
  });

  it('picks the release suite with main, not -updates or -security, from both kinds of file', () => {
    const etc = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-apt-'));
    try {
      fs.mkdirSync(path.join(etc, 'sources.list.d'));
      fs.writeFileSync(
        path.join(etc, 'sources.list'),
        'deb http://list.example/debian bookworm-updates main\n',
      );
      fs.writeFileSync(path.join(etc, 'sources.list.d', 'debian.sources'), deb822);
      fs.writeFileSync(
        path.join(etc, 'sources.list.d', 'other.list.disabled'),
        'deb http://x.example/ bookworm main\n',
      );
      const all = hostAptSources(etc);
      expect(all).toHaveLength(4);
      expect(mirrorFor(all, 'bookworm')?.uri).toBe('http://mirror.example/debian');
      expect(mirrorFor(all, 'trixie')).toBeUndefined();
    } finally {
      fs.rmSync(etc, { recursive: true, force: true });
    }
  });
});
