/**
 * Referral codes: the step the PostHog tutorial leaves as a TODO ("create a referral program").
 * Each referrer gets one code (and a link built from it) from `POST /referral-codes`; a
 * `referral redeemed` event may then name the referrer by its `referral_code` instead of an email,
 * and the worker pays the code's owner.
 *
 * Two items per referrer in the ledger table (lib/adapters/dynamodb/referral-codes.ts):
 *   code item  `refcode#<CODE>`              → the owner's email (and PostHog distinct id)
 *   email item `refcode-owner#<canonical>`   → the code
 * Both are written with attribute_not_exists, code item first. A code item is trusted only when
 * the email item of its owner points back at it, so a crash between the two writes, or the loser
 * of two concurrent first requests, leaves a code item nobody was given and nobody can redeem.
 */
import { CODE_ALPHABET, generateCode, type RandomBytes } from './codes';
import { PermanentError, RetryableError } from './errors';
import { canonicalEmail } from './identity';
import type { Referral } from './referral';

/** 31^10 ≈ 8 × 10^14 codes: guessing one that exists is hopeless at any request rate API Gateway lets through. */
export const REFERRAL_CODE_LENGTH = 10;

export interface CodeOwner {
  /** The referrer's email as first given (trimmed, lowercased): where their rewards are paid. */
  email: string;
  /** The referrer's PostHog distinct id, when the app passed one. */
  distinctId?: string;
}

/** The ledger table's code items, read: all the worker needs (GetItem). */
export interface ReferralCodeLookup {
  /** The code item, or undefined. */
  codeItem(code: string): Promise<(CodeOwner & { canonical: string }) | undefined>;
  /** The code the email item names, or undefined. */
  codeOf(canonical: string): Promise<string | undefined>;
}

/** And written: only the referral-codes function (PutItem). */
export interface ReferralCodeStore extends ReferralCodeLookup {
  /** Writes the code item unless the code exists; false when it does. */
  putCodeItem(code: string, owner: CodeOwner & { canonical: string }): Promise<boolean>;
  /** Writes the email item unless the person has one; false when they do. */
  putOwnerItem(canonical: string, code: string): Promise<boolean>;
}

/** Attempts at a fresh random code before giving up: a second collision in 8 × 10^14 is a broken generator. */
const MAX_CODE_ATTEMPTS = 3;

/**
 * The referrer's code: the one they already have, else a new random one. Two first requests at
 * once both write a code item, only one email item wins, and both callers answer the winner's code.
 */
export async function issueReferralCode(owner: CodeOwner, store: ReferralCodeStore, random?: RandomBytes): Promise<string> {
  const canonical = canonicalEmail(owner.email);
  const existing = await store.codeOf(canonical);
  if (existing) return existing;
  for (let attempt = 1; attempt <= MAX_CODE_ATTEMPTS; attempt++) {
    const code = generateCode(REFERRAL_CODE_LENGTH, random);
    if (!(await store.putCodeItem(code, { ...owner, canonical }))) continue;
    if (await store.putOwnerItem(canonical, code)) return code;
    // Another request gave this person a code first: theirs is the one.
    const winner = await store.codeOf(canonical);
    if (winner) return winner;
    // A consistent read after a refused conditional write finds the item; if not, ask again later.
    throw new RetryableError("referral code: the referrer's item was refused and then not found");
  }
  throw new PermanentError('referral_code_collisions', `referral code: ${MAX_CODE_ATTEMPTS} random codes in a row already existed`);
}

/** The owner of `code`, when it is a code we gave someone; undefined for any other. */
export async function resolveReferralCode(rawCode: string, store: ReferralCodeLookup): Promise<CodeOwner | undefined> {
  // Compared in one case, without the spaces a person may type (`abcd-efgh` is not one, `abcdefgh23` is),
  // and only if it could be one of ours at all: the alphabet and length we issue.
  const code = rawCode.trim().toUpperCase();
  if (code.length !== REFERRAL_CODE_LENGTH || ![...code].every((char) => CODE_ALPHABET.includes(char))) return undefined;
  const item = await store.codeItem(code);
  if (!item) return undefined;
  // Given to its owner only if the owner's item names it (see the header).
  if ((await store.codeOf(item.canonical)) !== code) return undefined;
  return { email: item.email, ...(item.distinctId ? { distinctId: item.distinctId } : {}) };
}

export interface ReferralCodeDeps {
  store: ReferralCodeLookup;
  /** REQUIRE_REFERRAL_CODE: a referral that names no code is refused. */
  required: boolean;
}

export interface ResolvedReferrer {
  /** The referral with its referrer the code's owner (when the code resolved). */
  referral: Referral;
  /** Why its code refuses it: a code we never issued, or none where one is required. */
  refusal?: 'unknown_referral_code' | 'referral_code_required';
  /** The event named a referrer email that is not the code's owner: ignored, reported for whoever investigates. */
  ignoredReferrerEmail?: string;
}

/**
 * The referrer of a referral that names a code is the code's owner, whatever referrer email the
 * event also carries: a code is what the app handed out, an email is anyone's to type. Run before
 * the ledger's begin, so the record holds the person who will be paid.
 */
export async function resolveReferrer(referral: Referral, deps: ReferralCodeDeps | undefined): Promise<ResolvedReferrer> {
  const code = referral.referralCode;
  if (code === undefined || code === '') return deps?.required ? { referral, refusal: 'referral_code_required' } : { referral };
  // Unresolved, a code-only referral has no referrer to pay and an email beside the code was
  // never checked against it: neither may take a claim. Parked (DLQ), not REJECTED, so a
  // deployment that forgot the wiring loses no genuine referral: redriven once it is fixed.
  if (!deps) {
    throw new PermanentError('referral_codes_unwired', 'referral code: the referral names a code but no referral code store is wired');
  }
  const owner = await resolveReferralCode(code, deps.store);
  if (!owner) return { referral, refusal: 'unknown_referral_code' };
  const named = referral.referrerEmail;
  const ignored = named && canonicalEmail(named) !== canonicalEmail(owner.email) ? named : undefined;
  return {
    referral: { ...referral, referrerEmail: owner.email, ...(owner.distinctId ? { referrerDistinctId: owner.distinctId } : {}) },
    ...(ignored ? { ignoredReferrerEmail: ignored } : {}),
  };
}
