import React from 'react';

import {getLinks, getStatus} from '../../api/client';
import {usePolling} from '../../api/use_polling';
import type {CustomSettingProps} from '../../types/mattermost-webapp';
import ErrorAlert from '../error_alert';

import LinkTable from './link_table';
import NetworkPanel from './network_panel';

/** How often the page asks the server again while it is open. */
export const pollInterval = 5000;

/**
 * The System Console's "Bridge status" section: a panel per network and
 * the table of linked channels, both polled while the page is open so they
 * follow the bridge without a reload.
 */
export default function BridgeStatusSetting({helpText, pollMs = pollInterval}: CustomSettingProps & {pollMs?: number}) {
    const status = usePolling(getStatus, pollMs);
    const links = usePolling(getLinks, pollMs);

    return (
        <div className='bridge-status'>
            {helpText && <div className='help-text'>{helpText}</div>}
            <h4 style={{marginTop: 16}}>{'Networks'}</h4>
            {status.error && <ErrorAlert>{`Could not read the bridge status: ${status.error}`}</ErrorAlert>}
            {!status.data && !status.error && <p>{'Loading…'}</p>}
            {status.data?.networks.map((n) => (
                <NetworkPanel
                    key={n.network}
                    status={n}
                />
            ))}
            <h4 style={{marginTop: 16}}>{'Linked channels'}</h4>
            {links.error && <ErrorAlert>{`Could not read the links: ${links.error}`}</ErrorAlert>}
            {!links.data && !links.error && <p>{'Loading…'}</p>}
            {links.data && (
                <LinkTable
                    links={links.data.links}
                    onUnlinked={() => {
                        void links.refresh();
                        void status.refresh();
                    }}
                />
            )}
        </div>
    );
}
