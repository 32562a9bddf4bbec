import { describe, expect, it } from 'vitest';
import { candidatePaths, documentNames } from '../../src/engine/steps/mark-used.js';
import { StepError } from '../../src/engine/steps/types.js';

describe('markUsed: where the named retrieve step is looked for', () => {
  it('its own list first, then each list around it out to the top level', () => {
    expect(candidatePaths('mark', 'mark', 'rules')).toEqual(['rules']);
    expect(candidatePaths('each[3].mark', 'mark', 'rules')).toEqual(['each[3].rules', 'rules']);
    expect(candidatePaths('outer[3].inner.then.mark', 'mark', 'r')).toEqual(['outer[3].inner.then.r', 'outer[3].r', 'r']);
    expect(candidatePaths('a[1].b[2].mark', 'mark', 'r')).toEqual(['a[1].b[2].r', 'a[1].r', 'r']);
    expect(candidatePaths('enrich.crm.mark', 'mark', 'r')).toEqual(['enrich.crm.r', 'r']);
  });
});

describe('markUsed: the rendered documents', () => {
  it('takes one id, an array, nested arrays of templates; drops null and empty; dedupes', () => {
    expect(documentNames('a')).toEqual(['a']);
    expect(documentNames(null)).toEqual([]);
    expect(documentNames([['a', 'b'], 'a', '', null, 7])).toEqual(['a', 'b', '7']);
  });

  it('refuses what is not an id', () => {
    expect(() => documentNames([{ id: 'a' }])).toThrow(StepError);
    expect(() => documentNames(['x'.repeat(201)])).toThrow(/documents\[0\]/);
    expect(() => documentNames(Array.from({ length: 201 }, (_, i) => `d${i}`))).toThrow(/limit is 200/);
  });
});
