// Classic JSX (React.createElement): the web app's own React is used, with
// no JSX runtime of a given React version bundled into the plugin.
import React, {useState} from 'react';

import manifest from '../manifest';
import type {CustomSettingProps} from '../types/mattermost-webapp';

// The same name the server suggests in Content-Disposition; a download
// started from script does not see that header's effect.
const fileName = 'mattermost-bridge-registration.yaml';

function registrationURL(): string {
    // Relative to the page, so a server under a subpath and any origin the
    // admin uses both work; Site URL may differ from the address in the browser.
    const base = typeof window.basename === 'string' ? window.basename.replace(/\/+$/, '') : '';
    return `${base}/plugins/${manifest.id}/api/v1/matrix/registration`;
}

function saveFile(text: string) {
    const url = URL.createObjectURL(new Blob([text], {type: 'application/yaml'}));
    const a = document.createElement('a');
    a.href = url;
    a.download = fileName;
    document.body.appendChild(a);
    a.click();
    a.remove();
    // Revoked later: some browsers start the download after click returns.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * The System Console's Matrix "Registration file" setting: a button that
 * downloads the application-service registration the server builds from the
 * saved settings, and says why when the server cannot (Site URL not set,
 * settings incomplete or not saved yet).
 */
export default function MatrixRegistrationSetting({helpText}: CustomSettingProps) {
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState('');

    const download = async () => {
        setBusy(true);
        setError('');
        try {
            const res = await fetch(registrationURL(), {
                credentials: 'same-origin',
                // Mattermost accepts the session cookie on plugin requests
                // made by script only with this header.
                headers: {'X-Requested-With': 'XMLHttpRequest'},
            });
            const body = await res.text();
            if (!res.ok) {
                setError(body.trim() || `The server answered ${res.status} ${res.statusText}.`);
                return;
            }
            saveFile(body);
        } catch (e) {
            setError(`Could not reach the server: ${e instanceof Error ? e.message : String(e)}`);
        } finally {
            setBusy(false);
        }
    };

    return (
        <div>
            <button
                type='button'
                className='btn btn-tertiary'
                disabled={busy}
                onClick={() => {
                    void download();
                }}
            >
                {busy ? 'Downloading…' : 'Download registration file'}
            </button>
            {error && (
                <div
                    className='has-error'
                    role='alert'
                >
                    <p className='control-label'>{error}</p>
                </div>
            )}
            {helpText && <div className='help-text'>{helpText}</div>}
        </div>
    );
}
