import React from 'react';

/** An error as the System Console shows a setting's (its has-error style), announced to screen readers. */
export default function ErrorAlert({children}: {children: React.ReactNode}) {
    return (
        <div
            className='has-error'
            role='alert'
        >
            <p className='control-label'>{children}</p>
        </div>
    );
}
