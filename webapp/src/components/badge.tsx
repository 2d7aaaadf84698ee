import React from 'react';

import type {Tone} from './format';

// Colors from Mattermost's own palette (online, away, dnd, offline), so the
// badges read the same as presence does everywhere else in the app.
const colors: Record<Tone, string> = {
    good: '#06d6a0',
    warn: '#ffbc1f',
    bad: '#d24b4e',
    off: '#8d93a5',
};

/** A small colored label: a state, a health, a network. */
export default function Badge({tone, children, title}: {tone: Tone; children: React.ReactNode; title?: string}) {
    return (
        <span
            className={`bridge-badge bridge-badge--${tone}`}
            data-tone={tone}
            title={title}
            style={{
                display: 'inline-block',
                padding: '1px 8px',
                borderRadius: 10,
                fontSize: 12,
                fontWeight: 600,
                lineHeight: '18px',
                color: tone === 'warn' ? '#3f4350' : '#fff',
                background: colors[tone],
                whiteSpace: 'nowrap',
            }}
        >
            {children}
        </span>
    );
}
