"""Catalog edits as config edits: read the business back, change the model, validate it, `apply_config`.

One transaction from the read to the commit, with the business row locked first, so two edits never
overwrite each other; and every edit gets the validation and database guarantees of `nextslot
load-config` (a capacity cut below existing bookings is refused, and so on). Nothing is deleted:
deactivating marks a resource or service inactive, and PUT makes it active again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from nextslot.core.business.config import apply_config, refused_config, validation_problems
from nextslot.core.business.config_export import exception_id as id_of
from nextslot.core.business.config_export import export_config, resource_entries
from nextslot.core.planning import unknown_business
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig, ExceptionConfig, ResourceConfig, ServiceConfig
from nextslot.schemas.config_fields import WeeklySpans
from nextslot.storage.tables import Business, Resource, Service
from nextslot.storage.uow import SqlAlchemyUnitOfWork

Change = Callable[[SqlAlchemyUnitOfWork, BusinessConfig], BusinessConfig | Rejected]


class OpenUnitOfWork(SqlAlchemyUnitOfWork):
    """The caller's open unit of work lent to `apply_config`: its `with` neither starts nor ends a transaction."""

    def __init__(self, uow: SqlAlchemyUnitOfWork):
        vars(self).update(vars(uow))  # the same session and repositories, whichever the unit of work has

    def __enter__(self) -> OpenUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def edit_config(uow: SqlAlchemyUnitOfWork, business_id: int, change: Change) -> BusinessConfig | Rejected:
    """Apply `change` to the stored config in one transaction; nothing is written unless all of it holds."""
    with uow:
        locked = select(Business.id).where(Business.id == business_id).with_for_update(key_share=True)  # apply_config's
        if uow.session.scalars(locked).one_or_none() is None:
            return unknown_business(business_id)
        stored = export_config(uow, business_id)
        if stored is None:
            return unknown_business(business_id)
        changed = change(uow, stored)
        if isinstance(changed, Rejected):
            return changed
        config = validated(changed)
        if isinstance(config, Rejected):
            return config
        # what was just read is what is stored, unless `change` wrote rows itself (a deactivation)
        wrote = uow.session.new or uow.session.dirty or uow.session.deleted
        applied = apply_config(OpenUnitOfWork(uow), config, None if wrote else stored.model_dump(mode="json"))  # commits
        return applied if isinstance(applied, Rejected) else config


def validated(config: BusinessConfig) -> BusinessConfig | Rejected:
    """Every rule of the config file checked again on the changed whole (references, unique keys), and what
    the database would refuse, refused first with a reason."""
    try:
        checked = BusinessConfig.model_validate(config.model_dump())
    except ValidationError as error:
        return invalid_config(error)
    return checked


def invalid_config(error: ValidationError) -> Rejected:
    return refused_config(validation_problems(error))


# --- resources -----------------------------------------------------------------------------------------


def put_resource(uow: SqlAlchemyUnitOfWork, business_id: int, given: ResourceConfig) -> bool | Rejected:
    """Create or replace a resource (and make it active); True when it is new. Hours and exceptions left
    out of `given` are kept."""
    created = False

    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig:
        nonlocal created
        stored = resource_entries(uow, business_id, given.key)
        created = not stored
        kept = {f: getattr(stored[0], f) for f in ("hours", "exceptions") if stored and f not in given.model_fields_set}
        return with_item(config, "resources", given.model_copy(update=kept))

    result = edit_config(uow, business_id, change)
    return result if isinstance(result, Rejected) else created


def deactivate_resource(uow: SqlAlchemyUnitOfWork, business_id: int, key: str) -> BusinessConfig | Rejected:
    """Offer the resource to no one from now on (its bookings stay); refused while an active service needs it."""

    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig | Rejected:
        row = uow.session.scalars(select(Resource).where(Resource.business_id == business_id,
                                                         Resource.key == key)).one_or_none()
        if row is None:
            return unknown("resource", key)
        users = [sv.key for sv in config.services if any(key in r.one_of for r in sv.requires)]
        if users:
            return Rejected("resource_in_use", f"{key} is still required by the active service(s) {', '.join(users)}: "
                                               "take it out of their requirements, or deactivate them, first.", "key")
        row.active = False
        return config.model_copy(update={"resources": [r for r in config.resources if r.key != key]})

    return edit_config(uow, business_id, change)


def set_hours(uow: SqlAlchemyUnitOfWork, business_id: int, key: str, hours: WeeklySpans) -> BusinessConfig | Rejected:
    return edit_resource(uow, business_id, key, lambda r: r.model_copy(update={"hours": hours}))


def add_exception(uow: SqlAlchemyUnitOfWork, business_id: int, key: str,
                  exception: ExceptionConfig) -> BusinessConfig | Rejected:
    return edit_resource(uow, business_id, key,
                         lambda r: r.model_copy(update={"exceptions": [*r.exceptions, exception]}))


def delete_exception(uow: SqlAlchemyUnitOfWork, business_id: int, key: str,
                     exception_id: str) -> BusinessConfig | Rejected:
    def change(r: ResourceConfig) -> ResourceConfig | Rejected:
        kept = without_exception(r.exceptions, exception_id)
        return kept if isinstance(kept, Rejected) else r.model_copy(update={"exceptions": kept})

    return edit_resource(uow, business_id, key, change)


def edit_resource(uow: SqlAlchemyUnitOfWork, business_id: int, key: str,
                  change: Callable[[ResourceConfig], ResourceConfig | Rejected]) -> BusinessConfig | Rejected:
    """Change one active resource; an inactive one must be made active (PUT) before its hours change."""

    def change_config(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig | Rejected:
        current = next((r for r in config.resources if r.key == key), None)
        if current is None:
            if resource_entries(uow, business_id, key):
                return Rejected("resource_inactive", f"{key} is inactive: PUT it to make it active again first.", "key")
            return unknown("resource", key)
        changed = change(current)
        return changed if isinstance(changed, Rejected) else with_item(config, "resources", changed)

    return edit_config(uow, business_id, change_config)


# --- closures, services, the whole config --------------------------------------------------------------


def add_closure(uow: SqlAlchemyUnitOfWork, business_id: int, closure: ExceptionConfig) -> BusinessConfig | Rejected:
    return edit_config(uow, business_id, lambda _, c: c.model_copy(update={"closures": [*c.closures, closure]}))


def delete_closure(uow: SqlAlchemyUnitOfWork, business_id: int, exception_id: str) -> BusinessConfig | Rejected:
    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig | Rejected:
        kept = without_exception(config.closures, exception_id)
        return kept if isinstance(kept, Rejected) else config.model_copy(update={"closures": kept})

    return edit_config(uow, business_id, change)


def put_service(uow: SqlAlchemyUnitOfWork, business_id: int, given: ServiceConfig) -> bool | Rejected:
    """Create or replace a service (and make it active); True when it is new."""
    created = False

    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig:
        nonlocal created
        created = stored_service(uow, business_id, given.key) is None
        return with_item(config, "services", given)

    result = edit_config(uow, business_id, change)
    return result if isinstance(result, Rejected) else created


def deactivate_service(uow: SqlAlchemyUnitOfWork, business_id: int, key: str) -> BusinessConfig | Rejected:
    """Stop offering the service (its bookings stay); a business keeps at least one active service."""

    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig | Rejected:
        row = stored_service(uow, business_id, key)
        if row is None:
            return unknown("service", key)
        remaining = [sv for sv in config.services if sv.key != key]
        if not remaining:
            return Rejected("last_service", f"{key} is the only active service: add another before deactivating it.",
                            "key")
        row.active = False
        return config.model_copy(update={"services": remaining})

    return edit_config(uow, business_id, change)


def replace_config(uow: SqlAlchemyUnitOfWork, business_id: int, given: BusinessConfig) -> BusinessConfig | Rejected:
    """Apply a whole config to the caller's own business, exactly as `nextslot load-config` would."""

    def change(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> BusinessConfig | Rejected:
        if given.business.slug != config.business.slug:
            return Rejected("slug_mismatch", f"This API key belongs to '{config.business.slug}', not "
                                             f"'{given.business.slug}'.", "business.slug")
        return given

    return edit_config(uow, business_id, change)


# --- helpers -------------------------------------------------------------------------------------------


def with_item(config: BusinessConfig, section: str, item: ResourceConfig | ServiceConfig) -> BusinessConfig:
    """The config with `item` replacing the entry of the same key in `section`, or added at the end."""
    items: list[Any] = getattr(config, section)
    key = item.key
    if any(i.key == key for i in items):
        return config.model_copy(update={section: [item if i.key == key else i for i in items]})
    return config.model_copy(update={section: [*items, item]})


def without_exception(items: list[ExceptionConfig], exception_id: str) -> list[ExceptionConfig] | Rejected:
    kept = [e for e in items if e.starts_at is None or id_of(e) != exception_id]
    if len(kept) == len(items):
        return Rejected("unknown_exception", f"No exception with id '{exception_id}' here.", "exception_id")
    return kept


def stored_service(uow: SqlAlchemyUnitOfWork, business_id: int, key: str) -> Service | None:
    return uow.session.scalars(select(Service).where(Service.business_id == business_id,
                                                     Service.key == key)).one_or_none()


def unknown(kind: str, key: str) -> Rejected:
    return Rejected(f"unknown_{kind}", f"No {kind} '{key}' here.", "key")
