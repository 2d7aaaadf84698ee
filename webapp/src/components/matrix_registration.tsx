// Classic JSX (React.createElement): the web app's own React is used, with
// no JSX runtime of a given React version bundled into the plugin.
import React, {useState} from 'react';

import {messageOf, pluginFetch} from '../api/client';
import type {CustomSettingProps} from '../types/mattermost-webapp';
import ErrorAlert from './error_alert';

// The same name the server suggests in Content-Disposition; a download
// started from script does not see that header's effect.
const fileName = 'mattermost-bridge-registration.yaml';

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
            const res = await pluginFetch('/api/v1/matrix/registration');
            saveFile(await res.text());
        } catch (e) {
            // The server says why (Site URL not set, settings not saved...).
            setError(messageOf(e));
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
            {error && <ErrorAlert>{error}</ErrorAlert>}
            {helpText && <div className='help-text'>{helpText}</div>}
        </div>
    );
}
