import type { ComponentChildren } from 'preact';
import { onLinkClick } from '../router.js';

/** An in-app link: a real <a href> (open in a new tab, copy the address) that navigates without a reload. */
export function Link(props: { href: string; children: ComponentChildren; class?: string; title?: string; 'aria-current'?: 'page' | undefined }) {
  const { href, children, ...rest } = props;
  return (
    <a href={href} onClick={(e) => onLinkClick(e as unknown as MouseEvent, href)} {...rest}>
      {children}
    </a>
  );
}
